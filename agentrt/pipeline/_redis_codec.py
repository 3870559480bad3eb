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
    from collections.abc import Mapping

__all__ = ["FORMAT", "decode_outcome", "encode_outcome", "namespace"]

FORMAT = 1


def namespace(identity: Mapping[str, str], public: bool) -> str:
    """The tenant part of a key: hashed, so no account id or e-mail sits in Redis keys."""
    if public or not identity:
        return "pub"
    return "t" + hashlib.sha256(canonical_json(dict(identity)).encode()).hexdigest()[:16]


def encode_outcome(key: str, outcome: ToolOutcome, tags: Mapping[str, int] | None = None) -> str:
    return json.dumps({"v": FORMAT, "key": key, "content": outcome.content,
                       "is_error": outcome.is_error, "tags": dict(tags or {})},
                      ensure_ascii=False, separators=(",", ":"))


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
    if (not isinstance(content, str) or not isinstance(is_error, bool)
            or not isinstance(tags, dict)
            or not all(isinstance(k, str) and type(v) is int for k, v in tags.items())):
        return None
    return ToolOutcome(content, is_error), tags
