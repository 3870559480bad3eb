"""What a finished run hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._approvals import PendingCall
    from .llm._usage import Limit, Usage
    from .pipeline._types import RunStats

__all__ = ["RunResult"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """``stop_reason`` is the API's (``end_turn``, ``refusal``, ...), ``max_iterations``,
    ``usage_limit`` (then ``limit`` names the :class:`~agentrt.UsageLimits` bound), or
    ``approval_required`` (then ``pending`` lists the calls waiting for a person:
    decide them with ``Agent.resume``)."""

    text: str
    thread_id: str
    run_id: str
    stop_reason: str
    usage: Usage
    stats: RunStats
    iterations: int
    limit: Limit | None = None
    pending: tuple[PendingCall, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON, as ``agentrt run --json`` prints it."""
        return {
            "text": self.text,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "limit": self.limit,
            "pending": [p.to_json() for p in self.pending],
            "usage": self.usage.to_json(),
            "stats": self.stats.to_json(),
        }
