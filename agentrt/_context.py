"""What a tool can learn about the run that called it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RunContext"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """Passed to a tool function that declares a parameter annotated ``RunContext``.

    ``identity`` (account, tenant, user) is part of every call key of a read-only
    function that is not public, so one tenant's result is never served to another.
    """

    thread_id: str
    run_id: str
    agent: str
    identity: Mapping[str, str] = field(default_factory=dict)
    deps: Mapping[str, Any] = field(default_factory=dict)
