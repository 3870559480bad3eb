"""Typed events of a run, as ``Agent.stream`` yields them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .llm._usage import Usage

if TYPE_CHECKING:
    from ._approvals import PendingCall
    from ._result import RunResult

__all__ = [
    "ApprovalRequired",
    "PartialOutput",
    "RunEvent",
    "RunFinished",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "TurnFinished",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's text as it streams in."""

    text: str


@dataclass(frozen=True, slots=True)
class PartialOutput:
    """A typed run's answer as streamed so far (an agent with ``output_type``): the JSON
    parsed leniently (dicts and lists; a value still streaming, such as a half-sent
    string, is left out until it is complete), not yet validated.
    Comes after the ``TextDelta`` that changed it; the validated answer is
    ``RunResult.output``. A retried answer streams again from the start."""

    output: Any


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """The model asked for a tool call (``id`` is its ``tool_use`` id); the pipeline
    is about to answer it."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """``source`` is the pipeline stage that answered: ``executed`` when the tool ran."""

    id: str
    name: str
    is_error: bool
    source: str
    content: str
    duration: float


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """One model turn ended (``stop_reason`` as the API gave it) with its token usage."""

    iteration: int
    stop_reason: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    """The run pauses: these calls wait for a person (``Agent.resume`` decides them).
    Comes just before ``RunFinished``, whose result has the same ``pending``. Their
    ``ToolCallStarted`` came with the reply; their ``ToolCallFinished`` comes from the
    resume that decides them."""

    pending: tuple[PendingCall, ...]


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The last event of a run: its :class:`~agentrt.RunResult`."""

    result: RunResult


RunEvent: TypeAlias = (TextDelta | PartialOutput | ToolCallStarted | ToolCallFinished
                       | TurnFinished | ApprovalRequired | RunFinished)
