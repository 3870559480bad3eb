"""What a finished run hands back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .llm._usage import Limit, Usage
    from .pipeline._types import RunStats

__all__ = ["RunResult"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """``stop_reason`` is the API's (``end_turn``, ``refusal``, ...), ``max_iterations``,
    or ``usage_limit`` (then ``limit`` names the :class:`~agentrt.UsageLimits` bound)."""

    text: str
    thread_id: str
    run_id: str
    stop_reason: str
    usage: Usage
    stats: RunStats
    iterations: int
    limit: Limit | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as JSON, as ``agentrt run --json`` prints it."""
        return {
            "text": self.text,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "limit": self.limit,
            "usage": self.usage.to_json(),
            "stats": self.stats.to_json(),
        }
