"""The fake API's context limits and context management, as the SDK's beta types describe them.

- A context window per model (``context_windows``, by name or prefix; a model not listed has
  no limit): a prompt past it gets the API's 400 ``invalid_request_error``
  ``prompt is too long: N tokens > M maximum``.
- ``context_management.edits`` (beta ``context-management-2025-06-27``):
  ``clear_tool_uses_20250919`` (``trigger`` input_tokens, default 100,000, or tool_uses;
  ``keep`` tool_uses, default 3; ``clear_at_least``; ``exclude_tools``;
  ``clear_tool_inputs``) replaces the oldest tool results, chronologically, with a
  placeholder; ``clear_thinking_20251015`` drops thinking blocks but for the newest ``keep``
  assistant turns (default 1). Each applied edit is reported in the reply's
  ``context_management.applied_edits`` (``cleared_tool_uses`` / ``cleared_thinking_turns``,
  ``cleared_input_tokens``). The API is stateless: every request is edited afresh.
- ``compact_20260112`` (beta ``compact-2026-01-12``; ``trigger`` input_tokens, default
  150,000; ``instructions``): past the trigger the conversation is summarized and the reply
  starts with a ``compaction`` block, which the client sends back; in a request, everything
  before the last compaction block is dropped. The compaction's own usage is an
  ``iterations`` entry of type ``compaction``, left out of the top-level counts.
  ``pause_after_compaction`` is refused (not emulated).
- ``count_tokens`` counts the request after its edits, with
  ``context_management.original_input_tokens`` when it has edits.

Where the reference (``anthropic-api.md``) is silent, the SDK's types decide (anthropic 2.16).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._cache_sim import estimate_tokens, parse_prompt

if TYPE_CHECKING:
    from collections.abc import Awaitable, Collection, Mapping

    from ._cache_sim import Prompt
    from ._script import RecordedRequest, Responder, Step

__all__ = ["CLEARED_PLACEHOLDER", "ContextSeen", "PageReading", "answering_summaries",
           "emulate_context", "page_text", "summary_reply"]

BETA_EDITS = "context-management-2025-06-27"
BETA_COMPACT = "compact-2026-01-12"
_BETAS = {"clear_tool_uses_20250919": BETA_EDITS, "clear_thinking_20251015": BETA_EDITS,
          "compact_20260112": BETA_COMPACT}
CLEARED_PLACEHOLDER = "[Tool result cleared to save context]"


@dataclass(slots=True)
class ContextSeen:
    """What the model sees of a request, and what the reply must report about it."""

    body: dict[str, Any]  # the request, edits applied, content before a compaction dropped
    prompt: Prompt
    original_tokens: int
    window_tokens: int = 0  # what the window is checked against: after clearing, before compacting
    applied: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False  # the request asked for context management
    compaction: dict[str, Any] | None = None  # the block a compacting reply starts with
    compaction_usage: dict[str, Any] | None = None

    def count(self) -> dict[str, Any]:
        """The ``count_tokens`` answer."""
        counted: dict[str, Any] = {"input_tokens": self.prompt.total_tokens}
        if self.edited:
            counted["context_management"] = {"original_input_tokens": self.original_tokens}
        return counted

    def finish(self, message: dict[str, Any]) -> None:
        """Add to the reply what the edits and a compaction leave in it."""
        if self.edited:
            message["context_management"] = {"applied_edits": self.applied}
        if self.compaction is not None:
            message["content"] = [self.compaction, *message["content"]]
            usage = message["usage"]
            usage["iterations"] = [
                self.compaction_usage,
                {"type": "message", **{k: usage[k] for k in (
                    "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                    "output_tokens")}}]


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _since_compaction(messages: list[Any]) -> list[dict[str, Any]]:
    """The messages from the last compaction block on (the API drops what precedes it)."""
    for index in range(len(messages) - 1, -1, -1):
        blocks = _blocks(messages[index])
        for position in range(len(blocks) - 1, -1, -1):
            block = blocks[position]
            if block.get("type") != "compaction":
                continue
            if block.get("content") == "":
                raise ValueError(f"messages.{index}.content.{position}.content: a compaction "
                                 "block's content must not be empty (null marks a failed one)")
            if block.get("content") is None:
                continue  # a failed compaction: a no-op
            return [{**messages[index], "content": blocks[position:]},
                    *messages[index + 1:]]
    return list(messages)


def _value(spec: Any, kind: str, default: int, where: str) -> int:
    if spec is None:
        return default
    if not isinstance(spec, dict) or spec.get("type") != kind or type(spec.get("value")) is not int:
        raise ValueError(f"{where}: expected {{\"type\": \"{kind}\", \"value\": <int>}}")
    return int(spec["value"])


def emulate_context(body: dict[str, Any], prompt: Prompt, betas: Collection[str],
                    windows: Mapping[str, int] | None) -> ContextSeen:
    """The request as the model sees it; ValueError (a 400) for a malformed edit, a
    missing beta, or a prompt past the model's window."""
    given = body.get("messages")
    messages: list[Any] = given if isinstance(given, list) else []
    config = body.get("context_management")
    seen_messages = _since_compaction(messages)
    if config is None and len(seen_messages) == len(messages) and not any(
            b.get("type") == "compaction" for m in seen_messages[:1] for b in _blocks(m)):
        seen = ContextSeen(body, prompt, prompt.total_tokens, prompt.total_tokens)
    else:
        seen = _edited(body, prompt, seen_messages, config, betas)
    window = _window(str(body.get("model", "")), windows)
    tokens = seen.window_tokens
    if window is not None and tokens > window:
        raise ValueError(f"prompt is too long: {tokens} tokens > {window} maximum")
    return seen


def _window(model: str, windows: Mapping[str, int] | None) -> int | None:
    for name in sorted(windows or {}, key=len, reverse=True):
        if model == name or model.startswith(name):
            return (windows or {})[name]
    return None


def _edited(body: dict[str, Any], prompt: Prompt, messages: list[dict[str, Any]], config: Any,
            betas: Collection[str]) -> ContextSeen:
    edits: list[Any] = []
    if config is not None:
        if not isinstance(config, dict) or not isinstance(config.get("edits", []), list):
            raise ValueError("context_management: expected {\"edits\": [...]}")
        edits = config.get("edits", [])
    for index, edit in enumerate(edits):
        kind = edit.get("type") if isinstance(edit, dict) else None
        if kind not in _BETAS:
            raise ValueError(f"context_management.edits.{index}.type: unknown edit {kind!r} "
                             f"(expected one of {', '.join(_BETAS)})")
        if _BETAS[kind] not in betas:
            raise ValueError(f"context_management.edits.{index}: {kind} requires the beta "
                             f"header anthropic-beta: {_BETAS[kind]}")
        if kind == "compact_20260112" and edit.get("pause_after_compaction"):
            raise ValueError(f"context_management.edits.{index}.pause_after_compaction: not "
                             "emulated by the fake server")
    messages = list(messages)  # edited copy-on-write: a changed message is replaced
    current = {**body, "messages": messages}
    dropped = len(messages) != len(body.get("messages") or ())
    original = parse_prompt(current).total_tokens if dropped else prompt.total_tokens
    applied: list[dict[str, Any]] = []
    compaction: dict[str, Any] | None = None
    compaction_usage: dict[str, Any] | None = None
    tokens = checked = original
    for index, edit in enumerate(edits):
        where = f"context_management.edits.{index}"
        if edit["type"] == "clear_tool_uses_20250919":
            report = _clear_tool_uses(messages, edit, tokens, where)
        elif edit["type"] == "clear_thinking_20251015":
            report = _clear_thinking(messages, edit, where)
        else:
            trigger = _value(edit.get("trigger"), "input_tokens", 150_000, f"{where}.trigger")
            report = None
            if tokens > trigger:
                text = summary_of(messages, edit.get("instructions"))
                compaction = {"type": "compaction", "content": text}
                compaction_usage = {"type": "compaction", "input_tokens": tokens,
                                    "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": 0,
                                    "output_tokens": estimate_tokens(text)}
                checked = tokens
                messages[:] = [{"role": "assistant", "content": [compaction]}]
        if report is not None:
            tokens -= report["cleared_input_tokens"]
            applied.append(report)
    seen = parse_prompt(current)
    return ContextSeen(current, seen, original, tokens if compaction is None else checked,
                       applied, edited=config is not None, compaction=compaction,
                       compaction_usage=compaction_usage)


def _replace(messages: list[dict[str, Any]], index: int, blocks: list[dict[str, Any]]) -> None:
    messages[index] = {**messages[index], "content": blocks}


def _clear_tool_uses(messages: list[dict[str, Any]], edit: dict[str, Any], tokens: int,
                     where: str) -> dict[str, Any] | None:
    excluded = set(edit.get("exclude_tools") or ())
    uses = [b for m in messages if m.get("role") == "assistant" for b in _blocks(m)
            if b.get("type") == "tool_use" and b.get("name") not in excluded]
    trigger = edit.get("trigger") or {"type": "input_tokens", "value": 100_000}
    if not isinstance(trigger, dict) or trigger.get("type") not in ("input_tokens", "tool_uses"):
        raise ValueError(f"{where}.trigger: expected input_tokens or tool_uses")
    measure = tokens if trigger["type"] == "input_tokens" else len(uses)
    if measure <= _value(trigger, str(trigger["type"]), 0, f"{where}.trigger"):
        return None
    keep = _value(edit.get("keep"), "tool_uses", 3, f"{where}.keep")
    cleared = uses[:max(0, len(uses) - keep)]
    if not cleared:
        return None
    ids = {str(b.get("id")) for b in cleared}
    inputs = edit.get("clear_tool_inputs")
    names = {str(b.get("id")): b.get("name") for b in cleared}
    freed = 0
    edited: list[tuple[int, list[dict[str, Any]]]] = []
    for index, message in enumerate(messages):
        blocks = _blocks(message)
        new = list(blocks)
        for position, block in enumerate(blocks):
            if block.get("type") == "tool_result" and str(block.get("tool_use_id")) in ids:
                new[position] = {**block, "content": CLEARED_PLACEHOLDER}
            elif block.get("type") == "tool_use" and str(block.get("id")) in ids and (
                    inputs is True or (isinstance(inputs, list)
                                       and names.get(str(block.get("id"))) in inputs)):
                new[position] = {**block, "input": {}}
            else:
                continue
            freed += estimate_tokens(block) - estimate_tokens(new[position])
        if any(a is not b for a, b in zip(new, blocks, strict=True)):
            edited.append((index, new))
    at_least = edit.get("clear_at_least")
    if at_least is not None and freed < _value(at_least, "input_tokens", 0,
                                               f"{where}.clear_at_least"):
        return None
    for index, new in edited:
        _replace(messages, index, new)
    return {"type": "clear_tool_uses_20250919", "cleared_tool_uses": len(cleared),
            "cleared_input_tokens": freed}


def _clear_thinking(messages: list[dict[str, Any]], edit: dict[str, Any],
                    where: str) -> dict[str, Any] | None:
    keep_spec = edit.get("keep")
    turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant"
             and any(b.get("type") in ("thinking", "redacted_thinking") for b in _blocks(m))]
    if keep_spec == "all" or (isinstance(keep_spec, dict) and keep_spec.get("type") == "all"):
        return None
    keep = _value(keep_spec, "thinking_turns", 1, f"{where}.keep")
    cleared = turns[:max(0, len(turns) - keep)]
    freed = 0
    for index in cleared:
        blocks = _blocks(messages[index])
        kept = [b for b in blocks if b.get("type") not in ("thinking", "redacted_thinking")]
        freed += sum(estimate_tokens(b) for b in blocks) - sum(estimate_tokens(b) for b in kept)
        _replace(messages, index, kept)
    if not cleared:
        return None
    return {"type": "clear_thinking_20251015", "cleared_thinking_turns": len(cleared),
            "cleared_input_tokens": freed}


def summary_of(messages: list[dict[str, Any]], instructions: Any = None) -> str:
    """A short deterministic summary: the earlier one, then the user's texts (clipped)."""
    parts: list[str] = []
    for message in messages:
        for block in _blocks(message):
            if block.get("type") == "compaction" and block.get("content"):
                parts.append(f"Earlier: {str(block['content'])[:300]}")
            elif message.get("role") == "user" and block.get("type") == "text":
                parts.append(f"User: {str(block.get('text'))[:60]}")
    kept = parts[:1] + parts[1:][-8:]
    return (f"Summary of {len(messages)} messages. " + " | ".join(kept))[:1200] or "Summary."


def summary_reply(request_messages: list[dict[str, Any]]) -> str:
    """What the fake model writes when asked for a summary (``agentrt.context``'s request):
    deterministic and short, naming how long the transcript was."""
    text = " ".join(str(b.get("text", "")) for m in request_messages for b in _blocks(m))
    lines = [line for line in text.splitlines() if line.startswith("[user]")]
    return (f"Summary of a {len(text)}-character transcript. "
            + " | ".join(line[7:67] for line in lines[-8:]))[:1500]


def answering_summaries(responder: Responder) -> Responder:
    """``responder``, but the summary requests ``agentrt.context`` makes (its
    ``SUMMARY_SYSTEM`` prompt) get a short deterministic summary instead."""
    from ..context import SUMMARY_SYSTEM
    from ._script import Reply

    def respond(request: RecordedRequest) -> Step | Awaitable[Step]:
        if request.system.startswith(SUMMARY_SYSTEM):
            return Reply(text=summary_reply(request.messages))
        return responder(request)

    return respond


class PageReading:
    """A tool-heavy conversation for the fake model (a responder): each run the user asks
    for ``per_run`` pages, the model reads them one ``read_page`` call a turn, then says
    it is done. Every ``reread_every`` pages it reads page 1 again (a call whose result a
    long thread has long cleared). Summary requests get :func:`summary_reply`."""

    def __init__(self, per_run: int = 10, *, reread_every: int | None = None,
                 tool: str = "read_page") -> None:
        self.per_run = per_run
        self.reread_every = reread_every
        self.tool = tool
        self.page = 0
        self.in_run = 0
        self.summaries = 0

    def __call__(self, request: RecordedRequest) -> Step:
        from ..context import SUMMARY_SYSTEM
        from ._script import Reply, ToolUse

        if request.system.startswith(SUMMARY_SYSTEM):
            self.summaries += 1
            return Reply(text=summary_reply(request.messages))
        if self.in_run < self.per_run:
            self.in_run += 1
            self.page += 1
            page = self.page
            if self.reread_every and self.page % self.reread_every == 0:
                page = 1
            return Reply(text=f"Reading page {page}.",
                         tool_calls=[ToolUse(self.tool, {"page": page})])
        self.in_run = 0
        return Reply(text=f"I have read up to page {self.page}.")


def page_text(page: int, size: int = 20_480) -> str:
    """``size`` characters of deterministic text for page ``page``."""
    line = f"page {page}: the quick brown fox jumps over the lazy dog, line "
    text, number = [], 0
    total = 0
    while total < size:
        piece = f"{line}{number}.\n"
        text.append(piece)
        total += len(piece)
        number += 1
    return "".join(text)[:size]
