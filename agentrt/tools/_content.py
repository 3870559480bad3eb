"""ToolContent: a tool result made of content blocks instead of one string.

A ``tool_result`` may carry a list of blocks (text, image, document,
``tool_reference``); a plain return value is always rendered as one string. A
tool function returns a :class:`ToolContent` when the blocks themselves matter:
``initialize_tools`` answers with its guides plus ``tool_reference`` blocks,
which make deferred tool definitions visible to the model without touching the
request prefix. Blocks are the API's own JSON shapes, so the result stays JSON
and every cache layer (Redis included) can hold it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ToolContent", "tool_reference"]


def tool_reference(tool_name: str) -> dict[str, Any]:
    """A ``tool_reference`` block: the deferred tool ``tool_name`` becomes visible to the
    model from this result on (it must be in the request's ``tools``)."""
    return {"type": "tool_reference", "tool_name": tool_name}


@dataclass(frozen=True, slots=True, init=False)
class ToolContent:
    """``ToolContent("Loaded.", tool_reference("get_weather"))``: strings become text
    blocks, mappings are taken as blocks. Raises ValueError for a block without a
    string ``type`` or one JSON cannot carry: caught where the tool is written,
    not when a cache tries to store it."""

    blocks: tuple[dict[str, Any], ...]

    def __init__(self, *items: str | Mapping[str, Any]) -> None:
        blocks = []
        for index, item in enumerate(items):
            block = {"type": "text", "text": item} if isinstance(item, str) else dict(item)
            if not isinstance(block.get("type"), str):
                raise ValueError(f"block {index}: expected a 'type' string, got {block!r}")
            try:
                json.dumps(block)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"block {index} is not JSON: {exc}") from exc
            blocks.append(block)
        object.__setattr__(self, "blocks", tuple(blocks))

    @property
    def text(self) -> str:
        """The text blocks, one per line: what logs and run events show."""
        return "\n".join(str(b["text"]) for b in self.blocks if b["type"] == "text")

    def references(self) -> list[str]:
        """The tool names of its ``tool_reference`` blocks."""
        return [str(b.get("tool_name")) for b in self.blocks if b["type"] == "tool_reference"]
