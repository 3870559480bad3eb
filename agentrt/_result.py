"""What a finished run hands back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .llm._usage import Usage
    from .pipeline._types import RunStats

__all__ = ["RunResult"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """``stop_reason`` is the API's (``end_turn``, ``refusal``, ...) or ``max_iterations``."""

    text: str
    thread_id: str
    run_id: str
    stop_reason: str
    usage: Usage
    stats: RunStats
    iterations: int

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "usage": self.usage.to_json(),
            "stats": self.stats.to_json(),
        }
