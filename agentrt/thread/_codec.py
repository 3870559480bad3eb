"""The stored form of a message, shared by every thread store.

Stores keep JSON text, never live objects: a store's copy then cannot alias the
caller's (no deep copies to forget), and every backend (memory, SQLite, Redis)
hands back the very same values, key order, ints vs floats and all. Checking a
message on the way in, before any write, keeps a bad one from ever being
stored; checking it on the way out turns a corrupted row into a ``StoreError``
that names the thread and the message instead of a stray ``ValueError``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentrt._errors import StoreError

from ._messages import Message

__all__ = ["StoredMessage", "decode_message", "decode_metadata", "encode_message",
           "encode_metadata"]

# Compact, unicode kept as is; NaN and Infinity are not JSON and the API refuses them.
_dumps = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``, always encodable as UTF-8.

    A lone surrogate (``"\\ud800"``, which ``json.loads`` happily produces from
    an API reply) cannot be written as UTF-8; such a value is stored with
    ASCII escapes instead, which decodes to the very same string.
    """
    text: str = _dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _dumps(value, ensure_ascii=True)
    return text


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as a store keeps it: scalars and JSON text."""

    id: str
    role: str
    content: str
    created_at: float
    metadata: str


def encode_message(thread_id: str, message: Message) -> StoredMessage:
    def bad(reason: str) -> StoreError:
        return StoreError(f"cannot store message {message.id!r} in thread {thread_id!r}: {reason}")

    if not isinstance(message.id, str) or not message.id:
        raise bad("its id must be a non-empty string")
    if message.role not in ("user", "assistant"):
        raise bad(f"role must be 'user' or 'assistant', not {message.role!r}")
    content = message.content
    if not isinstance(content, str) and not (
        isinstance(content, list) and all(isinstance(block, dict) for block in content)
    ):
        raise bad("content must be a string or a list of block dicts")
    if not isinstance(message.metadata, Mapping):
        raise bad("metadata must be a mapping")
    if isinstance(message.created_at, bool) or not isinstance(message.created_at, int | float):
        raise bad("created_at must be a number of seconds")
    try:
        content_json = dumps(content)
        metadata_json = dumps(dict(message.metadata))
    except (TypeError, ValueError) as exc:
        raise bad(f"it is not JSON-serializable ({exc})") from exc
    return StoredMessage(message.id, message.role, content_json, float(message.created_at),
                         metadata_json)


def decode_message(thread_id: str, stored: StoredMessage) -> Message:
    try:
        content = json.loads(stored.content)
        metadata = json.loads(stored.metadata)
        if not isinstance(metadata, dict):
            raise ValueError("metadata is not a JSON object")
        if isinstance(content, list) and not all(isinstance(b, dict) for b in content):
            raise ValueError("a content block is not a JSON object")
        return Message.from_json({
            "id": stored.id,
            "role": stored.role,
            "content": content,
            "created_at": stored.created_at,
            "metadata": metadata,
        })
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(
            f"stored message {stored.id!r} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc


def encode_metadata(thread_id: str, metadata: Mapping[str, Any] | None) -> str:
    try:
        return dumps(dict(metadata or {}))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"metadata of thread {thread_id!r} is not JSON-serializable ({exc})"
        ) from exc


def decode_metadata(thread_id: str, text: str) -> dict[str, Any]:
    try:
        metadata = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"stored metadata of thread {thread_id!r} is corrupt: {exc}") from exc
    if not isinstance(metadata, dict):
        raise StoreError(f"stored metadata of thread {thread_id!r} is not a JSON object")
    return metadata
