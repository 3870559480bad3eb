"""How a tool outcome is written to Redis, and read back without trusting it.

JSON only (never pickle: a writable Redis must not be a way to run code). A value
carries the full call key it was stored under, so a value copied or planted under
another key, a value from a newer or older format, or bytes that are not ours at
all are a miss, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from ._types import ToolOutcome
from .keys import canonical_json

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["FORMAT", "decode_outcome", "encode_outcome", "namespace", "other_format",
           "tag_versions"]

FORMAT = 1


def namespace(identity: Mapping[str, str], public: bool) -> str:
    """The tenant part of a key: hashed, so no account id or e-mail sits in Redis keys."""
    if public or not identity:
        return "pub"
    return "t" + hashlib.sha256(canonical_json(dict(identity)).encode()).hexdigest()[:16]


def encode_outcome(key: str, outcome: ToolOutcome, tags: Mapping[str, int] | None = None) -> str:
    value: dict[str, Any] = {"v": FORMAT, "key": key, "content": outcome.content,
                             "is_error": outcome.is_error, "tags": dict(tags or {})}
    if outcome.blocks is not None:  # optional: a reader that ignores it still gets the text
        value["blocks"] = list(outcome.blocks)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_outcome(key: str, raw: bytes | str | None) -> tuple[ToolOutcome, dict[str, int]] | None:
    """The outcome and the tag versions it was stored with; None if absent or not ours."""
    if raw is None:
        return None
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != FORMAT or data.get("key") != key:
        return None
    content, is_error, tags = data.get("content"), data.get("is_error"), data.get("tags")
    blocks = data.get("blocks")
    if (not isinstance(content, str) or not isinstance(is_error, bool)
            or not isinstance(tags, dict)
            or not all(isinstance(k, str) and type(v) is int for k, v in tags.items())
            or not (blocks is None or (isinstance(blocks, list) and all(
                isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)))):
        return None
    return ToolOutcome(content, is_error,
                       blocks=None if blocks is None else tuple(blocks)), tags


def other_format(raw: bytes | str | Exception | None) -> bool:
    """True for a value in our shape but another format version (an older or newer
    agentrt): expected during an upgrade, unlike a corrupt or planted value."""
    if raw is None or isinstance(raw, Exception):
        return False
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("v"), int) and data["v"] != FORMAT


def tag_versions(tags: Sequence[str], counters: Sequence[Any]) -> dict[str, int] | None:
    """Tag counters as read from Redis; None if one is not an integer (corrupt, or a
    key of another type): results under that tag cannot be trusted or stored."""
    versions: dict[str, int] = {}
    for tag, counter in zip(tags, counters, strict=True):
        if counter is None:
            versions[tag] = 0
            continue
        if isinstance(counter, Exception):
            return None
        try:
            versions[tag] = int(counter)
        except (TypeError, ValueError):
            return None
    return versions
