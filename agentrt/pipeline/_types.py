"""The one contract every pipeline stage shares.

A stage is ``async (call, ctx) -> outcome``: it answers the call itself (from a
cache, from a duplicate) or passes it to the next handler it was built with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..log import get_logger

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .._context import RunContext
    from ..tools import FunctionOptions, FunctionSpec, Tool

__all__ = ["CallContext", "Forgetting", "RunStats", "StatsRecorder", "ToolCall", "ToolHandler",
           "ToolOutcome", "pass_side_effect"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool_use block after lookup and validation: ready to key, cache or run.

    ``key`` is set for read-only calls only (see :func:`agentrt.pipeline.call_key`);
    a side-effecting call has none, so no stage can ever merge or cache it.
    ``options`` are the function's declared options after any agent override.
    """

    id: str
    tool: Tool
    spec: FunctionSpec
    arguments: BaseModel
    options: FunctionOptions
    key: str | None = None

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
    """``content`` is what the model reads; ``source`` names the stage that answered.

    ``transient`` marks errors that say nothing about the call itself (a timeout,
    a cancellation): those are never cached, even where errors may be.
    ``blocks``, when set, is the ``tool_result`` content sent instead of ``content``:
    the API's content blocks (text, ``tool_reference``, ...), for results one string
    cannot carry (see :class:`agentrt.ToolContent`). They are JSON, like every
    result, so every cache layer can hold them; ``content`` is then their text.
    """

    content: str
    is_error: bool = False
    source: str = "executed"
    transient: bool = False
    blocks: tuple[dict[str, Any], ...] | None = None

    def answered_by(self, source: str) -> ToolOutcome:
        return ToolOutcome(self.content, self.is_error, source, self.transient, self.blocks)

    def cacheable(self, options: FunctionOptions) -> bool:
        return not self.is_error or (options.error_ttl is not None and not self.transient)

    def ttl(self, options: FunctionOptions) -> float | None:
        return options.error_ttl if self.is_error else options.ttl


HIT_SOURCES = frozenset({"turn", "memo", "local", "shared", "inflight", "shared_flight",
                         "batched"})


@dataclass(frozen=True, slots=True)
class RunStats:
    """Per-run counters: ``tool_calls`` blocks seen, ``executed`` real upstream calls
    (a batch of many inputs is one), ``hits`` calls answered by each pipeline stage."""

    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    hits: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"tool_calls": self.tool_calls, "executed": self.executed,
                "errors": self.errors, "hits": dict(self.hits)}


@dataclass(slots=True)
class StatsRecorder:
    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    hits: Counter[str] = field(default_factory=Counter)

    def record(self, outcome: ToolOutcome) -> None:
        self.tool_calls += 1
        self.errors += outcome.is_error
        if outcome.source in HIT_SOURCES:
            self.hits[outcome.source] += 1

    def snapshot(self) -> RunStats:
        return RunStats(self.tool_calls, self.executed, self.errors, dict(self.hits))


@dataclass(slots=True)
class CallContext:
    """Shared by the calls of one run.

    ``turn`` is reset for each assistant message (per-message state: turn dedup);
    ``thread`` lives for the run and is rebuilt from the stored history at its
    start (thread-scoped state: the memo), so it survives a resume anywhere.
    ``log`` is the run's logger for the events of every call (``tool.executed``,
    ``tool.hit``): bound once per run, with the run's ids, because a call through
    structlog's lazy module-level proxy binds a new logger each time, even for an
    event its level filters out.
    """

    run: RunContext
    stats: StatsRecorder
    turn: dict[str, Any] = field(default_factory=dict)
    thread: dict[str, Any] = field(default_factory=dict)
    log: Any = field(default_factory=lambda: get_logger("agentrt.tool"))


ToolHandler: TypeAlias = Callable[[ToolCall, CallContext], Awaitable[ToolOutcome]]


class Forgetting(Protocol):
    """A stage that keeps results and can drop those under some cache tags.

    Each one drops them itself after a side-effecting call passes through it. The
    processor also calls ``forget`` directly for a side effect it never passes on:
    one of unknown outcome, found in a thread resumed after a crash, that may have
    happened before the process stopped. The processor finds these stages by following
    each one's ``next`` (the handler it passes calls to) and looking for ``forget``.
    """

    next: ToolHandler

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None: ...


async def pass_side_effect(stage: Forgetting, call: ToolCall, ctx: CallContext) -> ToolOutcome:
    """A side-effecting call through a stage that keeps results: it runs, then the stage
    forgets what it invalidates, whether it succeeded, failed or was cancelled (a write
    that failed part-way or timed out may have happened all the same)."""
    try:
        return await stage.next(call, ctx)
    finally:
        if call.options.invalidates:
            await stage.forget(call.options.invalidates, ctx)
