"""The one contract every pipeline stage shares, and the per-run context it runs in.

A handler is ``async (call, ctx) -> outcome``: a stage answers the call itself (from
a cache, from a duplicate) or passes it to the next handler it was built with; the
terminal handler runs the tool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar

from ..log import get_logger

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .._context import RunContext
    from ..log import Logger
    from ..tools import FunctionOptions, FunctionSpec, Tool

__all__ = ["CallContext", "Replayed", "RunState", "RunStats", "StatsRecorder", "ToolCall",
           "ToolHandler", "ToolOutcome"]

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
        """Validated arguments as Python values, for the method call."""
        return {name: getattr(self.arguments, name) for name in type(self.arguments).model_fields}

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
        return {"tool_calls": self.tool_calls, "executed": self.executed,
                "errors": self.errors, "hits": dict(self.hits)}


# The sources of outcomes no stage answered: every other source is a stage's name.
NOT_ANSWERED = frozenset({"executed", "rejected", "cancelled", "interrupted"})


@dataclass(slots=True)
class StatsRecorder:
    """Counts a run's outcomes: an outcome answered by a stage is a hit for that stage."""

    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    hits: Counter[str] = field(default_factory=Counter)

    def record(self, outcome: ToolOutcome) -> None:
        self.tool_calls += 1
        self.errors += outcome.is_error
        if outcome.source not in NOT_ANSWERED:
            self.hits[outcome.source] += 1

    def snapshot(self) -> RunStats:
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


@dataclass(slots=True)
class CallContext:
    """Shared by the calls of one run.

    ``log`` is the run's logger for the events of every call (``tool.executed``,
    ``tool.hit``), bound once per run with the run's ids.
    """

    run: RunContext
    stats: StatsRecorder = field(default_factory=StatsRecorder)
    log: Logger = field(default_factory=lambda: get_logger("agentrt.tool"))
    _run_state: dict[RunState[Any], Any] = field(default_factory=dict)
    _turn_state: dict[RunState[Any], Any] = field(default_factory=dict)
    # (tool, function) -> the start of its calls' keys in this run (see keys.key_head)
    key_heads: dict[tuple[object, str], bytes] = field(default_factory=dict)

    def state(self, slot: RunState[T]) -> T:
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
