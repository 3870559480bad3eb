"""The one contract every pipeline stage shares.

A stage is ``async (call, ctx) -> outcome``: it answers the call itself (from a
cache, from a duplicate) or passes it to the next handler it was built with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .._context import RunContext
    from ..tools import FunctionSpec, Tool

__all__ = ["CallContext", "RunStats", "StatsRecorder", "ToolCall", "ToolHandler", "ToolOutcome"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool_use block after lookup and validation: ready to key, cache or run."""

    id: str
    tool: Tool
    spec: FunctionSpec
    arguments: BaseModel

    @property
    def name(self) -> str:
        return self.spec.name

    def kwargs(self) -> dict[str, Any]:
        """Validated arguments as Python values, for the method call."""
        return {name: getattr(self.arguments, name) for name in type(self.arguments).model_fields}

    def normalized(self) -> dict[str, Any]:
        """Validated arguments as JSON values (defaults filled), for keys and logs."""
        return self.arguments.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """``content`` is what the model reads; ``source`` names the stage that answered."""

    content: str
    is_error: bool = False
    source: str = "executed"

    def answered_by(self, source: str) -> ToolOutcome:
        return ToolOutcome(self.content, self.is_error, source)


@dataclass(frozen=True, slots=True)
class RunStats:
    """Per-run counters: ``tool_calls`` blocks seen, ``executed`` real tool runs."""

    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    answered_by: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"tool_calls": self.tool_calls, "executed": self.executed,
                "errors": self.errors, "answered_by": dict(self.answered_by)}


@dataclass(slots=True)
class StatsRecorder:
    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    answered_by: Counter[str] = field(default_factory=Counter)

    def record(self, outcome: ToolOutcome) -> None:
        self.tool_calls += 1
        self.errors += outcome.is_error
        self.answered_by[outcome.source] += 1

    def snapshot(self) -> RunStats:
        return RunStats(self.tool_calls, self.executed, self.errors, dict(self.answered_by))


@dataclass(slots=True)
class CallContext:
    """Shared by the calls of one run; ``turn`` is reset for each assistant message
    so a stage can keep per-message state (turn dedup)."""

    run: RunContext
    stats: StatsRecorder
    turn: dict[str, Any] = field(default_factory=dict)


ToolHandler: TypeAlias = Callable[[ToolCall, CallContext], Awaitable[ToolOutcome]]
