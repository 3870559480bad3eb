"""Token estimates and a prompt-cache simulation faithful to the API's prefix rules.

The estimate (a quarter of the bytes of each block's canonical JSON) is not the real tokenizer,
but it is deterministic: the same prefix always costs the same, so tests can assert exact
equalities between requests, and a prefix that changes by one byte misses the cache.

Deferred tools (`defer_loading: true`) are not part of the prefix: they cost nothing until a
`tool_reference` names them (in a `tool_result`, the client-side search of the API's docs, or
a `tool_search_tool_result`), and then their definition counts once, inline, at the block
holding the first reference, as the API expands it there. So `count_tokens` and `usage` agree,
and revealing a tool never touches the cached prefix before it. As the API requires, a
reference must name a tool of the request (else a 400), and until one names a deferred tool
the model cannot see it: `Prompt.hidden` names those, and a strict fake model
(`strict_deferred=True`) refuses to call one (see `build_message`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20  # how far before a breakpoint the API looks for an earlier cache entry
_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass")


def estimate_tokens(value: Any) -> int:
    return math.ceil(len(canonical(value)) / 4)


@dataclass(frozen=True, slots=True)
class Prompt:
    """A request flattened to blocks in render order (tools, system, messages)."""

    digests: list[bytes]  # sha256 of the prefix ending at each block
    prefix_tokens: list[int]  # tokens of the prefix ending at each block
    breakpoints: list[tuple[int, str]]  # (block index, ttl), ascending
    # deferred tools no tool_reference has named yet: the model cannot see (or call) them
    hidden: frozenset[str] = frozenset()

    @property
    def total_tokens(self) -> int:
        return self.prefix_tokens[-1] if self.prefix_tokens else 0


def _blocks(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return list(value) if isinstance(value, list) else []


def _deferred(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("defer_loading") is True


def check_tools(tools: list[Any]) -> dict[str, dict[str, Any]]:
    """The API's deferral rules (ValueError, a 400); returns the tools by name."""
    for index, tool in enumerate(tools):
        if _deferred(tool) and str(tool.get("type", "")).startswith("tool_search_tool_"):
            raise ValueError(f"tools.{index}: the tool search tool ({tool.get('name')}) cannot "
                             "be deferred; remove defer_loading from it")
    if tools and all(_deferred(t) for t in tools):
        raise ValueError("tools: at least one tool must not be deferred (defer_loading: true "
                         "is set on every tool)")
    return {str(t["name"]): t for t in tools if isinstance(t, dict) and "name" in t}


def references(block: Any) -> list[tuple[str, Any]]:
    """(path inside the block, tool name) of each tool_reference a content block holds."""
    if not isinstance(block, dict):
        return []
    content = block.get("content")
    if block.get("type") == "tool_result" and isinstance(content, list):
        return [(f"content.{i}", item.get("tool_name")) for i, item in enumerate(content)
                if isinstance(item, dict) and item.get("type") == "tool_reference"]
    if block.get("type") == "tool_search_tool_result" and isinstance(content, dict):
        found = content.get("tool_references")
        return [(f"content.tool_references.{i}", item.get("tool_name"))
                for i, item in enumerate(found if isinstance(found, list) else [])
                if isinstance(item, dict)]
    return []


def parse_prompt(body: Mapping[str, Any]) -> Prompt:
    """Flatten `body`; ValueError (the API's 400) for too many breakpoints, a bad ttl, a
    broken deferral rule or a tool_reference to a tool the request does not define."""
    tools = _blocks(body.get("tools"))
    defined = check_tools(tools)
    # (tag, block, deferred definitions the block reveals: hashed and counted with it)
    items: list[tuple[list[Any], Any, list[Any]]] = [
        (["tool"], t, []) for t in tools if not _deferred(t)]
    items += [(["system"], block, []) for block in _blocks(body.get("system"))]
    # Costs nothing, but changing tool_choice or thinking invalidates the messages cache.
    items.append((["settings", body.get("tool_choice"), body.get("thinking")], None, []))
    revealed: set[str] = set()
    for index, message in enumerate(_blocks(body.get("messages"))):
        fields = message if isinstance(message, dict) else {}
        tag = ["message", index, fields.get("role")]
        for position, block in enumerate(_blocks(fields.get("content"))):
            expanded = []
            for where, name in references(block):
                tool = defined.get(name) if isinstance(name, str) else None
                if tool is None:
                    raise ValueError(
                        f"messages.{index}.content.{position}.{where}: tool_reference names "
                        f"{name!r}, which is not a tool of this request; every referenced tool "
                        "must be in `tools` (with defer_loading: true)")
                if _deferred(tool) and name not in revealed:
                    revealed.add(str(name))
                    expanded.append({k: v for k, v in tool.items() if k != "cache_control"})
            items.append((tag, block, expanded))
    markers = {
        i: block["cache_control"]
        for i, (_, block, _) in enumerate(items)
        if isinstance(block, dict) and block.get("cache_control") is not None
    }
    top_level = body.get("cache_control")
    if top_level is not None and items[-1][1] is not None:
        markers.setdefault(len(items) - 1, top_level)
    if len(markers) > MAX_BREAKPOINTS:
        raise ValueError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(markers)}."
        )
    breakpoints: list[tuple[int, str]] = []
    for i, marker in sorted(markers.items()):
        ttl = marker.get("ttl", "5m") if isinstance(marker, dict) else None
        if ttl not in _TTL_SECONDS:
            raise ValueError(f"cache_control: ttl must be '5m' or '1h', got {ttl!r}")
        breakpoints.append((i, ttl))

    running = hashlib.sha256(canonical(body.get("model")))
    digests: list[bytes] = []
    prefix_tokens: list[int] = []
    total = 0
    for tag, block, expanded in items:
        # The marker is not content: moving a breakpoint must not change the prefix it ends.
        if isinstance(block, dict):
            block = {k: v for k, v in block.items() if k != "cache_control"}
        running.update(canonical([*tag, block, *expanded]) + b"\n")
        digests.append(running.copy().digest())
        total += 0 if block is None else estimate_tokens(block)
        total += sum(estimate_tokens(tool) for tool in expanded)
        prefix_tokens.append(total)
    hidden = frozenset(name for name, tool in defined.items() if _deferred(tool)) - revealed
    return Prompt(digests, prefix_tokens, breakpoints, hidden)


class PromptCache:
    """The cache entries of one fake server: prefix digest -> expiry on the monotonic clock."""

    def __init__(self, min_tokens: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_tokens = min_tokens
        self._clock = clock
        self._entries: dict[bytes, float] = {}

    def account(self, prompt: Prompt) -> dict[str, Any]:
        """Split the prompt's tokens into read, written and uncached (the API's `usage` fields)
        and store the entries the request writes."""
        now = self._clock()
        self._entries = {k: exp for k, exp in self._entries.items() if exp > now}
        hit, hit_ttl = -1, "5m"
        for index, ttl in prompt.breakpoints:
            for j in range(index, max(-1, index - LOOKBACK_BLOCKS), -1):
                if prompt.digests[j] in self._entries:
                    if j > hit:
                        hit, hit_ttl = j, ttl
                    break
        read = prompt.prefix_tokens[hit] if hit >= 0 else 0
        if hit >= 0:  # a read refreshes the entry
            self._entries[prompt.digests[hit]] = now + _TTL_SECONDS[hit_ttl]
        written = {"5m": 0, "1h": 0}
        covered = read
        for index, ttl in prompt.breakpoints:
            tokens = prompt.prefix_tokens[index]
            if tokens < self.min_tokens:
                continue  # below the minimum nothing is cached, silently, as the API does
            written[ttl] += max(0, tokens - covered)
            covered = max(covered, tokens)
            self._entries[prompt.digests[index]] = now + _TTL_SECONDS[ttl]
        creation = written["5m"] + written["1h"]
        return {
            "input_tokens": prompt.total_tokens - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written["5m"],
                "ephemeral_1h_input_tokens": written["1h"],
            },
        }
