"""The one contract every pipeline stage shares, and the per-run context it runs in.

A handler is ``async (call, ctx) -> outcome``: a stage answers the call itself (from
a cache, from a duplicate) or passes it to the next handler it was built with; the
terminal handler runs the tool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from ..log import get_logger

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .._context import RunContext
    from ..log import Logger
    from ..tools import FunctionOptions, FunctionSpec, Tool

__all__ = ["CallContext", "Replayed", "RunState", "RunStats", "StatsRecorder", "ToolCall",
           "ToolHandler", "ToolOutcome", "Tracing"]

T = TypeVar("T")


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
        """Validated arguments as Python values, for the method call (with any extra
        ones a schema-less input model kept: an MCP tool's, which its server validates)."""
        found = {name: getattr(self.arguments, name)
                 for name in type(self.arguments).model_fields}
        extra = self.arguments.__pydantic_extra__
        if extra:
            found.update(extra)
        return found

    def normalized(self) -> dict[str, Any]:
        """Validated arguments as JSON values (defaults filled), for keys and logs."""
        return self.arguments.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """``content`` is what the model reads; ``source`` names the stage that answered
    (``executed`` when the tool ran; ``rejected``, ``cancelled``, ``interrupted`` for
    calls that never reached a stage or lost theirs).

    ``transient`` marks errors that say nothing about the call itself (a timeout,
    a cancellation): those are never cached, even where errors may be.
    ``blocks``, when set, is the ``tool_result`` content sent instead of ``content``:
    the API's content blocks (text, ``tool_reference``, ...), for results one string
    cannot carry (see :class:`agentrt.ToolContent`). They are JSON, like every
    result, so every cache layer can hold them; ``content`` is then their text.
    ``error_type``: for an error, what kind (the exception's class, ``TimeoutError``),
    for traces; not kept by the shared layers.
    """

    content: str
    is_error: bool = False
    source: str = "executed"
    transient: bool = False
    blocks: tuple[dict[str, Any], ...] | None = None
    error_type: str | None = None

    def answered_by(self, source: str) -> ToolOutcome:
        """The same outcome, as answered by the stage named ``source``."""
        return ToolOutcome(self.content, self.is_error, source, self.transient, self.blocks,
                           self.error_type)

    def cacheable(self, options: FunctionOptions) -> bool:
        """Whether a stage may keep it: a success, or a deterministic error of a function
        that opted in with ``error_ttl``."""
        return not self.is_error or (options.error_ttl is not None and not self.transient)

    def ttl(self, options: FunctionOptions) -> float | None:
        """Seconds it may be kept: the function's ``error_ttl`` for an error, else its
        ``ttl`` (None: the cache's default)."""
        return options.error_ttl if self.is_error else options.ttl


@dataclass(frozen=True, slots=True)
class RunStats:
    """Per-run counters: ``tool_calls`` blocks seen, ``executed`` real upstream calls
    (a batch of many inputs is one), ``hits`` calls answered by each pipeline stage,
    by the stage's name (``turn_dedup``, ``memo``, ..., or a custom stage's own)."""

    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    hits: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The counters as JSON (``agentrt run --json`` prints them)."""
        return {"tool_calls": self.tool_calls, "executed": self.executed,
                "errors": self.errors, "hits": dict(self.hits)}


# The sources of outcomes no stage answered: every other source is a stage's name.
NOT_ANSWERED = frozenset({"executed", "rejected", "cancelled", "interrupted", "denied", "pending"})


@dataclass(slots=True)
class StatsRecorder:
    """Counts a run's outcomes: an outcome answered by a stage is a hit for that stage."""

    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    hits: Counter[str] = field(default_factory=Counter)

    def record(self, outcome: ToolOutcome) -> None:
        """Count one call and the stage that answered it."""
        self.tool_calls += 1
        self.errors += outcome.is_error
        if outcome.source not in NOT_ANSWERED:
            self.hits[outcome.source] += 1

    def snapshot(self) -> RunStats:
        """The counters so far, as an immutable ``RunStats``."""
        return RunStats(self.tool_calls, self.executed, self.errors, dict(self.hits))


class RunState(Generic[T]):
    """A typed slot of per-run state a stage keeps, made on first use in each run.

    ``per="turn"`` state starts afresh with each assistant message (turn dedup's
    calls in flight); ``per="run"`` lives for the run and is rebuilt from the stored
    thread when a run starts (the memo). A stage makes one in its constructor and
    reads it with ``ctx.state(self.slot)``: typed, and private to the stage object.
    """

    __slots__ = ("factory", "name", "per")

    def __init__(self, name: str, factory: Callable[[], T], *,
                 per: Literal["run", "turn"] = "run") -> None:
        self.name = name
        self.factory = factory
        self.per = per

    def __repr__(self) -> str:
        return f"RunState({self.name!r}, per={self.per!r})"


class Tracing(Protocol):
    """What the pipeline asks of the runtime's telemetry (``agentrt.telemetry.Telemetry``,
    which imports this package, not the other way round). Span contexts are opaque here."""

    async def tool_call(self, block: Any, item: ToolCall | ToolOutcome, handler: ToolHandler,
                        ctx: CallContext) -> ToolOutcome:
        """Runs one call in its ``execute_tool`` span and counts it."""
        ...

    def current_span_context(self) -> Any:
        """The current span's context, for a joiner to link to (None if none records)."""
        ...

    def link_current(self, to: Any, why: str) -> None:
        """Links the current span to ``to`` (a leader's span context)."""
        ...

    def traceparent(self) -> str | None:
        """The current span's W3C traceparent, to send to another process."""
        ...

    def from_traceparent(self, value: str) -> Any:
        """A span context from another process's traceparent (None if unreadable)."""
        ...


@dataclass(slots=True)
class CallContext:
    """Shared by the calls of one run.

    ``log`` is the run's logger for the events of every call (``tool.executed``,
    ``tool.hit``), bound once per run with the run's ids. ``telemetry``: the runtime's
    spans and metrics, None when OpenTelemetry is off (stages test it before any work).
    """

    run: RunContext
    stats: StatsRecorder = field(default_factory=StatsRecorder)
    log: Logger = field(default_factory=lambda: get_logger("agentrt.tool"))
    telemetry: Tracing | None = None
    _run_state: dict[RunState[Any], Any] = field(default_factory=dict)
    _turn_state: dict[RunState[Any], Any] = field(default_factory=dict)
    # (tool, function) -> the start of its calls' keys in this run (see keys.key_head)
    key_heads: dict[tuple[object, str], bytes] = field(default_factory=dict)

    def state(self, slot: RunState[T]) -> T:
        """A stage's state in this run (or this turn, for a per-turn slot), made by the
        slot's factory on first use."""
        states = self._turn_state if slot.per == "turn" else self._run_state
        found = states.get(slot)
        if found is None:
            found = states[slot] = slot.factory()
        return found

    def existing(self, slot: RunState[T]) -> T | None:
        """The slot's state if this run or turn made it already (None otherwise)."""
        states = self._turn_state if slot.per == "turn" else self._run_state
        found: T | None = states.get(slot)
        return found

    def new_turn(self) -> None:
        """The next assistant message's calls: per-turn state starts afresh."""
        self._turn_state = {}


@dataclass(frozen=True, slots=True)
class Replayed:
    """A call found in a thread's stored history, as a resumed run relearns it:
    ``outcome`` is its stored result (None when it failed or cannot be read back),
    ``at`` the wall-clock time the result was stored."""

    call: ToolCall
    outcome: ToolOutcome | None
    at: float


ToolHandler: TypeAlias = Callable[[ToolCall, CallContext], Awaitable[ToolOutcome]]
