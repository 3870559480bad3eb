"""The seam between the loop and the model: what one model turn looks like.

The loop asks a :class:`Model` for one turn and reads what it yields: text deltas as they
arrive (streaming only), then exactly one :class:`ModelReply`. ``ModelClient`` is the
implementation over the real ``anthropic`` SDK; ``agentrt.testing``'s ``ScriptedModel``
and ``FunctionModel`` are in-process doubles for unit tests of the loop. Nothing here
imports the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._events import TextDelta
    from ._usage import Usage

__all__ = ["Model", "ModelReply"]


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One assistant message, as the Messages API returned it (content blocks as JSON)."""

    id: str
    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage
    model: str


class Model(Protocol):
    """What the loop needs of a model: one turn at a time, and a close."""

    def turn(self, request: dict[str, Any], *, stream: bool,
             logger: Any = None) -> AsyncIterator[TextDelta | ModelReply]:
        """Text deltas as they arrive (when ``stream``), then exactly one ModelReply.

        ``request`` is a Messages API request body (``model``, ``max_tokens``,
        ``messages``, ``system``, ``tools``, ...); ``logger`` a bound logger for events.
        Failures are ``agentrt.ModelError`` and its subclasses, after any retries."""
        ...

    async def aclose(self) -> None:
        """Release what the model holds (connections); called once, by its owner."""
        ...
