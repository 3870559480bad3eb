"""What a finished run hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from ._approvals import PendingCall
    from .llm._usage import Limit, Usage
    from .pipeline._types import RunStats

__all__ = ["RunResult"]

OutputT = TypeVar("OutputT", default=Any)


@dataclass(frozen=True, slots=True)
class RunResult(Generic[OutputT]):
    """``stop_reason`` is the API's (``end_turn``, ``refusal``, ...), ``max_iterations``,
    ``usage_limit`` (then ``limit`` names the :class:`~agentrt.UsageLimits` bound), or
    ``approval_required`` (then ``pending`` lists the calls waiting for a person:
    decide them with ``Agent.resume``).

    ``output``: a typed run's answer (``output_type``), validated: set when the run
    ended with an answer (``end_turn``), None otherwise (and always for untyped runs);
    ``text`` is then its JSON."""

    text: str
    thread_id: str
    run_id: str
    stop_reason: str
    usage: Usage
    stats: RunStats
    iterations: int
    limit: Limit | None = None
    pending: tuple[PendingCall, ...] = field(default_factory=tuple)
    output: OutputT | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as JSON, as ``agentrt run --json`` prints it."""
        from pydantic_core import to_jsonable_python

        return {
            "text": self.text,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "limit": self.limit,
            "pending": [p.to_json() for p in self.pending],
            "output": to_jsonable_python(self.output),
            "usage": self.usage.to_json(),
            "stats": self.stats.to_json(),
        }
