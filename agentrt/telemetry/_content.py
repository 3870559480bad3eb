"""Message contents in the GenAI conventions' shape, for spans whose user opted in.

Recorded only with content capture on (``otel_capture_content`` or the conventions'
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``). What is recorded is what the
model and the tools exchanged: prompts, tool inputs, tool results. Never the API key,
the caller's identity or the values injected into tools, which no message carries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["MAX_CHARS", "bounded", "messages_json", "output_json", "system_json"]

# A span attribute is held in memory until exported; one huge result must not be.
MAX_CHARS = 100_000


def bounded(text: str) -> str:
    return text if len(text) <= MAX_CHARS else f"{text[:MAX_CHARS]}...[{len(text):,} chars]"


def _part(block: Mapping[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "content": block.get("text", "")}
    if kind == "tool_use":
        return {"type": "tool_call", "id": block.get("id"), "name": block.get("name"),
                "arguments": block.get("input")}
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": block.get("tool_use_id"),
                "response": block.get("content")}
    if kind == "thinking":
        return {"type": "reasoning", "content": block.get("thinking", "")}
    return {"type": str(kind)}  # images, documents, ...: their kind, not their bytes


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    return [_part(b) for b in content or () if isinstance(b, dict)]


def messages_json(messages: Iterable[Mapping[str, Any]]) -> str:
    """``gen_ai.input.messages``: a request's messages."""
    return bounded(json.dumps([{"role": m.get("role"), "parts": _parts(m.get("content"))}
                               for m in messages], ensure_ascii=False, default=str))


def system_json(system: Any) -> str:
    """``gen_ai.system_instructions``: a request's system prompt."""
    return bounded(json.dumps(_parts(system), ensure_ascii=False, default=str))


def output_json(content: list[dict[str, Any]], stop_reason: str) -> str:
    """``gen_ai.output.messages``: the model's reply."""
    return bounded(json.dumps([{"role": "assistant", "parts": _parts(content),
                                "finish_reason": stop_reason}], ensure_ascii=False, default=str))
