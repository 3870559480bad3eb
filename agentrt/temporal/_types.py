"""What crosses the Temporal server: the workflow's input and the activities' inputs and
outputs, plain dataclasses of JSON values (Temporal's default converter).

Standard library only: the workflow module imports this inside Temporal's sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BeginInput",
    "BeginOutput",
    "CallInput",
    "CallOutput",
    "Options",
    "PauseInput",
    "ResultsInput",
    "RunInput",
    "RunRef",
    "SettleInput",
    "TurnInput",
    "TurnOutput",
    "workflow_id",
]

WORKFLOW = "agentrt.run"
DECIDE = "decide"  # the update that decides a paused run's calls
WAIT = "wait_stop"  # the update that waits for the run to pause or end
CANCEL_RUN = "cancel_run"


def workflow_id(thread_id: str) -> str:
    """One workflow per thread at a time: its id is the thread's."""
    return f"agentrt-thread-{thread_id}"


@dataclass(slots=True)
class Options:
    """Activity timeouts and retries, chosen by the client (``TemporalRuntime``)."""

    heartbeat_timeout: float = 5.0
    model_timeout: float = 600.0  # one model request, start to close (one attempt)
    tool_timeout: float = 600.0  # one tool call, start to close (one attempt)
    store_timeout: float = 60.0
    read_only_attempts: int = 5  # a read-only call is retried (worker loss, errors)
    model_attempts: int = 5  # a model request is retried (the store dedups the reply)
    approval_timeout: float = 7 * 24 * 3600.0


@dataclass(slots=True)
class RunRef:
    """Which run an activity works for: the worker rebuilds everything else from the
    thread store (the source of truth) and its own agent."""

    agent: str
    thread_id: str
    run_id: str
    identity: dict[str, str] = field(default_factory=dict)
    events: str = ""  # the Redis stream that carries the run's events ("": none)


@dataclass(slots=True)
class RunInput:
    ref: RunRef
    user_input: Any  # str, a list of content blocks, or None (resume a paused thread)
    approve: list[str] = field(default_factory=list)
    deny: dict[str, str] = field(default_factory=dict)
    limits: dict[str, int | None] | None = None
    options: Options = field(default_factory=Options)


@dataclass(slots=True)
class BeginInput:
    ref: RunRef
    user_input: Any
    approve: list[str]
    deny: dict[str, str]


@dataclass(slots=True)
class BeginOutput:
    count: int  # messages in the thread after the user's
    max_iterations: int
    parallel: bool
    limits: dict[str, int | None]
    settled: list[dict[str, Any]] = field(default_factory=list)  # ToolCallFinished as JSON
    pending: list[dict[str, Any]] = field(default_factory=list)  # a paused turn's calls
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TurnInput:
    ref: RunRef
    count: int  # messages the thread holds when this turn's request is built
    iteration: int
    usage: dict[str, int]
    last_prompt: int
    sent: int
    limits: dict[str, int | None]


@dataclass(slots=True)
class TurnOutput:
    count: int  # messages after the reply (and a max_tokens continuation) is stored
    stop_reason: str
    usage: dict[str, int]  # this turn's
    text: str
    calls: list[dict[str, Any]]  # tool_use blocks, each with "read_only" added
    cut: bool  # max_tokens ending on a tool_use: the last call is not run
    message_id: str
    limit: str | None = None  # the request was not sent: a usage limit was reached
    sent: int = 0


@dataclass(slots=True)
class CallInput:
    ref: RunRef
    count: int  # the thread holds the assistant message asking for the call
    call: dict[str, Any]  # the tool_use block


@dataclass(slots=True)
class CallOutput:
    outcome: dict[str, Any] | None  # the ToolOutcome as JSON; None while it is pending
    duration: float
    executed: int = 0
    pending: dict[str, Any] | None = None  # the call waits for a person


@dataclass(slots=True)
class ResultsInput:
    ref: RunRef
    count: int
    message_id: str  # the results message's id: an attempt run again stores it once
    blocks: list[dict[str, Any]]  # each call's outcome as JSON, with its "id"
    turn: dict[str, Any] | None = None  # the TurnFinished event, published after them


@dataclass(slots=True)
class PauseInput:
    ref: RunRef
    assistant_id: str
    calls: list[dict[str, Any]]
    outcomes: list[dict[str, Any] | None]  # CallOutput as JSON; None for the pending ones
    pending: list[dict[str, Any]]


@dataclass(slots=True)
class SettleInput:
    ref: RunRef
    approve: list[str]
    deny: dict[str, str]
    moved_on: bool = False
