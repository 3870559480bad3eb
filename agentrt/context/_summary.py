"""The words of context management: stubs, clips, and the summary request."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..thread._messages import ContentBlock, Message

__all__ = ["SUMMARY_SYSTEM", "blocks_of", "clip", "stub_text", "summary_request", "text_of",
           "transcript"]

SUMMARY_SYSTEM = (
    "You write the running summary of a conversation between a user and an AI assistant "
    "that uses tools. It replaces the transcript below in the assistant's context.")
_SUMMARY_ASK = (
    "Summarize the conversation above for the assistant that will continue it: the user's "
    "goals and requests, decisions made, facts learned from tool results (names, ids, "
    "numbers, file paths), what was done and what is still pending. Be concise and "
    "specific; write only the summary.")


def blocks_of(message: Message) -> list[ContentBlock]:
    return message.blocks()


def text_of(value: Any) -> str:
    """The text of a block's content (a string, or a list of blocks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(text_of(b.get("text", b.get("content", ""))) if isinstance(b, dict)
                         else str(b) for b in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def clip(text: str, limit: int) -> str:
    """``text`` cut to its first and last ``limit // 2`` characters, with a notice."""
    if len(text) <= limit:
        return text
    half = max(1, limit // 2)
    return (f"{text[:half]}\n[... {len(text) - 2 * half} characters cut here: this content "
            f"was too long for the context window ...]\n{text[-half:]}")


def _call_label(block: ContentBlock) -> str:
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False, sort_keys=True)
    return f"{block.get('name')}({clip(arguments, 200)})"


def stub_text(call: ContentBlock | None, size: int) -> str:
    """What stands in for a cleared tool result: the call it answered, and how to get
    it back."""
    if call is None:
        return f"[tool result cleared from the context ({size} characters)]"
    return (f"[result of {_call_label(call)} cleared from the context to save space "
            f"({size} characters); call {call.get('name')} again if you need it]")



def summary_request(model: str, max_tokens: int, text: str) -> dict[str, Any]:
    """The request asking ``model`` to summarize ``text`` (a transcript)."""
    return {"model": model, "max_tokens": max_tokens,
            "system": [{"type": "text", "text": SUMMARY_SYSTEM}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": f"{text}\n\n{_SUMMARY_ASK}"}]}]}


def transcript(previous: str, messages: Sequence[Message], calls: Mapping[str, ContentBlock],
               *, room: int) -> str:
    """The messages as text for the summarizer (tool results by the name of their call,
    in ``calls``), cut to ``room`` characters."""
    per_block = 4000
    while True:
        lines = [f"<earlier summary>\n{previous}\n</earlier summary>"] if previous else []
        for message in messages:
            for block in blocks_of(message):
                kind = block.get("type")
                if kind == "text":
                    lines.append(f"[{message.role}] {clip(str(block.get('text')), per_block)}")
                elif kind == "tool_use":
                    lines.append(f"[assistant called {_call_label(block)}]")
                elif kind == "tool_result":
                    call = calls.get(str(block.get("tool_use_id")))
                    name = call.get("name") if call is not None else "tool"
                    lines.append(f"[{name} returned] "
                                 f"{clip(text_of(block.get('content')), per_block)}")
                elif kind == "compaction" and block.get("content"):
                    lines.append(f"<earlier summary>\n{block['content']}\n</earlier summary>")
        text = "\n".join(lines)
        if len(text) <= room or per_block <= 100:
            return clip(text, room)
        per_block //= 4

