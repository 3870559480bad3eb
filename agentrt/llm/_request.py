"""Builds the Messages API request: byte-stable prefix, cache breakpoints last.

Render order on the API side is tools -> system -> messages, and caching is an
exact prefix match. So the tools list and system blocks are emitted identically
on every turn, and breakpoints (three of the API's four) go on the last tool
definition, the last system block and the last block of the conversation: a
tool activation then loses only what follows the tools.
Deferred tool definitions (``defer_loading: true``) are not part of the rendered
prefix (the API expands one inline where a ``tool_reference`` names it), so the
tools breakpoint goes on the last tool that is not deferred.
Stored messages are never modified: markers are added to copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..thread import Message

__all__ = ["RequestBuilder"]

_EPHEMERAL: dict[str, str] = {"type": "ephemeral"}


def _merged_params(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Consecutive messages of one role become one (e.g. tool results then a new task)."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message.role:
            merged[-1]["content"] = [*merged[-1]["content"], *message.blocks()]
        else:
            merged.append({"role": message.role, "content": list(message.blocks())})
    return merged


@dataclass(frozen=True, slots=True)
class RequestBuilder:
    """A run's requests. ``model_origin()`` says what chose ``model`` (an agent's class
    attribute, a setting and its source), for the error when the API does not know it;
    asked only then."""

    model: str
    max_tokens: int
    system: str | None = None
    prompt_caching: bool = True
    model_origin: Callable[[], str] | None = None

    def build(self, tools: Sequence[dict[str, Any]], messages: Sequence[Message]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens}
        tool_defs = [dict(t) for t in tools]
        if tool_defs:
            request["tools"] = tool_defs
        if self.system:
            request["system"] = [{"type": "text", "text": self.system}]
        params = _merged_params(messages)
        request["messages"] = params
        if self.prompt_caching:
            loaded = [t for t in tool_defs if not t.get("defer_loading")]
            if loaded:
                loaded[-1]["cache_control"] = dict(_EPHEMERAL)
            if self.system:
                request["system"][-1]["cache_control"] = dict(_EPHEMERAL)
            if params and params[-1]["content"]:
                last = params[-1]["content"]
                last[-1] = {**last[-1], "cache_control": dict(_EPHEMERAL)}
        return request
