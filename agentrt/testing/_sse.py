"""Turning a scripted reply into the API's message JSON and into its SSE event sequence.

The framing follows what the SDK's decoder needs (an `event:` line on every frame, a blank line
after it) and the shapes clients must cope with: text in several deltas, tool input as arbitrary
JSON fragments starting with "", and cumulative usage in `message_delta`.
"""

from __future__ import annotations

import json
import math
import secrets
import string
from typing import TYPE_CHECKING, Any

from ._cache_sim import estimate_tokens
from ._search import run_search, search_kind

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from ._script import Reply, ToolSearch

Event = tuple[str, dict[str, Any]]
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 22) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def search_blocks(searches: Sequence[ToolSearch], tools: Any) -> list[dict[str, Any]]:
    """`server_tool_use` + `tool_search_tool_result` per search, run over the request's tools
    with the request's own tool search tool. ValueError when it has none."""
    if not searches:
        return []
    listed = [t for t in (tools if isinstance(tools, list) else []) if isinstance(t, dict)]
    search_tool = next((t for t in listed if search_kind(t) is not None), None)
    if search_tool is None:
        raise ValueError("the reply runs a tool search, but the request has no tool search "
                         "tool (tool_search_tool_regex_20251119 or tool_search_tool_bm25_20251119)")
    kind = search_kind(search_tool)
    assert kind is not None
    blocks: list[dict[str, Any]] = []
    for search in searches:
        use_id = search.id or new_id("srvtoolu_01")
        blocks.append({"type": "server_tool_use", "id": use_id,
                       "name": search_tool.get("name", f"tool_search_tool_{kind}"),
                       "input": {"query": search.query}})
        blocks.append({"type": "tool_search_tool_result", "tool_use_id": use_id,
                       "content": run_search(kind, search.query, listed)})
    return blocks


def build_message(
    reply: Reply, model: Any, usage: Mapping[str, Any], tools: Any = None,
    hidden: Collection[str] = (),
) -> tuple[dict[str, Any], dict[int, str]]:
    """The non-streaming message body, plus the raw JSON text to stream per tool_use block.

    `tools` (the request's) is what a reply's tool searches run over. `hidden` names the
    deferred tools no `tool_reference` has revealed yet: the model has not seen them, so a
    reply calling one (unless its own search finds it first) is a mistake of the script,
    a ValueError."""
    input_texts: dict[int, str] = {}
    if reply.content is not None:
        content = [dict(block) for block in reply.content]
    else:
        content = [{"type": "text", "text": reply.text}] if reply.text else []
        content += search_blocks(reply.searches, tools)
        found = {ref.get("tool_name") for block in content
                 if block.get("type") == "tool_search_tool_result"
                 for ref in block["content"].get("tool_references", ())}
        unseen = [c.name for c in reply.tool_calls if c.name in hidden and c.name not in found]
        if unseen:
            raise ValueError(
                f"the reply calls {', '.join(map(repr, unseen))}, deferred and not yet "
                "revealed: the model cannot see a deferred tool until a tool_reference names "
                "it (a tool search, or a tool_result holding one)")
        for call in reply.tool_calls:
            tool_input: Any = dict(call.input)
            if call.raw_input_json is not None:
                input_texts[len(content)] = tool_input = call.raw_input_json
                # A JSON body cannot carry broken JSON: then the text itself stands in.
                # JSON too deep to parse here goes into the body as it is (see RAW_INPUT).
                try:
                    tool_input = json.loads(call.raw_input_json)
                except RecursionError:
                    tool_input = raw_input_marker(call.raw_input_json)
                except ValueError:
                    pass
            block = {"type": "tool_use", "id": call.id or new_id("toolu_01"), "name": call.name}
            content.append({**block, "input": tool_input})
    has_tool_use = any(block.get("type") == "tool_use" for block in content)
    output_tokens = reply.output_tokens
    if output_tokens is None:
        output_tokens = max(1, estimate_tokens(content))
    message = {
        "id": new_id("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason or ("tool_use" if has_tool_use else "end_turn"),
        "stop_sequence": None,
        "stop_details": reply.stop_details,
        "usage": {**usage, "output_tokens": output_tokens, "service_tier": "standard"},
    }
    return message, input_texts


def encode(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _pieces(text: str, parts: int = 3, size: int | None = None) -> list[str]:
    """At most `parts` fragments (or fragments of `size` characters); a 2-character text
    still yields two, which is the point."""
    size = size or max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


RAW_INPUT = "\x00agentrt-raw-input:"


def raw_input_marker(text: str) -> str:
    """A stand-in for tool input text that cannot be parsed and re-encoded (nested
    deeper than the interpreter's recursion limit): :func:`splice_raw_inputs` puts the
    text itself in its place in the encoded body, as the API would send it."""
    return f"{RAW_INPUT}{text}"


def splice_raw_inputs(body: str) -> str:
    """``body`` (JSON text) with every raw-input stand-in replaced by its text."""
    opening = json.dumps(RAW_INPUT)[:-1]  # the quote and the escaped marker, no closing quote
    while (start := body.find(opening)) >= 0:
        end = start + len(opening)
        while body[end] != '"':  # the stand-in's closing quote: the first unescaped one
            end += 2 if body[end] == "\\" else 1
        text = json.loads(body[start:end + 1])[len(RAW_INPUT):]
        body = body[:start] + text + body[end + 1:]
    return body


def message_events(message: Mapping[str, Any], input_texts: Mapping[int, str], *,
                   piece_chars: int | None = None) -> list[Event]:
    """Every event for `message`; `input_texts` overrides the JSON streamed for a tool_use block;
    `piece_chars` streams text and input in deltas of that size (else three per block)."""
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        events += _block_events(index, block, input_texts.get(index), piece_chars)
    counters = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    cumulative = {key: usage[key] for key in (*counters, "output_tokens")}
    if "iterations" in usage:
        cumulative["iterations"] = usage["iterations"]
    delta = {key: message[key] for key in ("stop_reason", "stop_sequence", "stop_details")}
    closing = {"type": "message_delta", "delta": delta, "usage": cumulative}
    if message.get("context_management") is not None:
        closing["context_management"] = message["context_management"]
    events.append(("message_delta", closing))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: Mapping[str, Any], input_text: str | None,
                  piece_chars: int | None = None) -> list[Event]:
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        opening: dict[str, Any] = {**block, "text": ""}
        deltas = [{"type": "text_delta", "text": piece}
                  for piece in _pieces(block["text"], size=piece_chars)]
    elif kind in ("tool_use", "server_tool_use"):
        opening = {**block, "input": {}}
        text = input_text if input_text is not None else json.dumps(block.get("input", {}))
        deltas = [{"type": "input_json_delta", "partial_json": p}
                  for p in ["", *_pieces(text, size=piece_chars)]]
    elif kind == "thinking":
        opening = {**block, "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p}
                  for p in _pieces(block["thinking"], size=piece_chars)]
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    else:  # redacted_thinking, server tool results, ...: sent whole, as the API does
        opening = dict(block)
    return [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opening},
        ),
        *[
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]
