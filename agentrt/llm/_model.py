"""The seam between the loop and the model: what one model turn looks like.

The loop asks a :class:`Model` for one turn and reads what it yields: text deltas as they
arrive and each ``tool_use`` block as it completes (:class:`ToolUseComplete`; streaming
only), then exactly one :class:`ModelReply`. A model that never yields the blocks is
fine: its calls simply all start at the end of the message. ``ModelClient`` is the
implementation over the real ``anthropic`` SDK; ``agentrt.testing``'s ``ScriptedModel``
and ``FunctionModel`` are in-process doubles for unit tests of the loop. Nothing here
imports the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._events import TextDelta
    from ._usage import Usage

__all__ = ["Model", "ModelReply", "ToolUseComplete"]


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One assistant message, as the Messages API returned it (content blocks as JSON).

    ``context``: the API's ``context_management`` report (``applied_edits``), when the
    request asked for context editing."""

    id: str
    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage
    model: str
    context: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ToolUseComplete:
    """A streamed ``tool_use`` block at its ``content_block_stop``, before the message ends.

    ``index`` is its position in the message's content; ``block`` is the block as the
    final :class:`ModelReply` will hold it (``type``, ``id``, ``name``, ``input``), except
    that ``input`` is None when the streamed JSON does not parse (strictly) as an object:
    the final reply then decides what the call is. The loop uses it to start read-only
    calls early (eager execution); nothing is stored from it.
    """

    index: int
    block: dict[str, Any]


class Model(Protocol):
    """What the loop needs of a model: one turn at a time, and a close."""

    def turn(self, request: dict[str, Any], *, stream: bool,
             logger: Any = None
             ) -> AsyncIterator[TextDelta | ToolUseComplete | ModelReply]:
        """Text deltas as they arrive and :class:`ToolUseComplete` blocks (when ``stream``),
        then exactly one ModelReply.

        ``request`` is a Messages API request body (``model``, ``max_tokens``,
        ``messages``, ``system``, ``tools``, ...); ``logger`` a bound logger for events.
        Failures are ``agentrt.ModelError`` and its subclasses, after any retries."""
        ...

    async def aclose(self) -> None:
        """Release what the model holds (connections); called once, by its owner."""
        ...
