"""The stored form of a message, shared by every thread store.

Stores keep JSON text, never live objects: a store's copy then cannot alias the
caller's (no deep copies to forget), and every backend (memory, SQLite, Redis)
hands back the very same values, key order, ints vs floats and all. Checking a
message on the way in, before any write, keeps a bad one from ever being
stored; checking it on the way out turns a corrupted row into a ``StoreError``
that names the thread and the message instead of a stray ``ValueError``.

A value nested deeper than the interpreter's recursion limit (a record 100,000
levels deep) cannot be encoded or decoded by ``json``: that is a
``RecursionError``, turned into the same ``StoreError`` as any other value that
cannot be stored or read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentrt._errors import StoreError

from ._messages import Message, ThreadEvent, ThreadState

__all__ = [
    "StoredEvent",
    "StoredMessage",
    "check_claim",
    "check_owner",
    "decode_event",
    "decode_message",
    "decode_metadata",
    "decode_state",
    "encode_event",
    "encode_message",
    "encode_metadata",
    "encode_state",
    "loads",
]

# What json raises on a value it cannot take: RecursionError for one nested too deep.
_UNENCODABLE = (TypeError, ValueError, RecursionError)

# Compact, unicode kept as is; NaN and Infinity are not JSON and the API refuses them.
# Made once: ``json.dumps`` with options builds a new encoder at every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``, always encodable as UTF-8.

    A lone surrogate (``"\\ud800"``, which ``json.loads`` happily produces from
    an API reply) cannot be written as UTF-8; such a value is stored with
    ASCII escapes instead, which decodes to the very same string.
    """
    text: str = _ENCODER.encode(value)
    if text.isascii():  # (a flag of the string's: no copy made)
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _ASCII_ENCODER.encode(value)
    return text


def loads(text: str | bytes) -> Any:
    """``json.loads``, with a document nested too deep to parse as a ``ValueError``."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("it is nested too deeply to parse") from exc


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
        metadata_json = dumps(dict(message.metadata)) if message.metadata else "{}"
    except RecursionError as exc:
        raise bad("it is nested too deeply to store") from exc
    except (TypeError, ValueError) as exc:
        raise bad(f"it is not JSON-serializable ({exc})") from exc
    return StoredMessage(message.id, message.role, content_json, float(message.created_at),
                         metadata_json)


def decode_message(thread_id: str, stored: StoredMessage) -> Message:
    try:
        content = loads(stored.content)
        metadata = loads(stored.metadata)
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


def _encode_object(what: str, value: Mapping[str, Any] | None) -> str:
    if value is not None and not isinstance(value, Mapping):
        raise StoreError(f"{what} must be a mapping, not {type(value).__name__}")
    if not value:
        return "{}"  # (no encoder call: a thread's metadata and state are mostly empty)
    try:
        return dumps(dict(value))
    except RecursionError as exc:
        raise StoreError(f"{what} is nested too deeply to store") from exc
    except _UNENCODABLE as exc:
        raise StoreError(f"{what} is not JSON-serializable ({exc})") from exc


def _decode_object(what: str, text: str | bytes) -> dict[str, Any]:
    try:
        value = loads(text)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"stored {what} is corrupt: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"stored {what} is not a JSON object")
    return value


def encode_metadata(thread_id: str, metadata: Mapping[str, Any] | None) -> str:
    return _encode_object(f"metadata of thread {thread_id!r}", metadata)


def decode_metadata(thread_id: str, text: str) -> dict[str, Any]:
    return _decode_object(f"metadata of thread {thread_id!r}", text)


def encode_state(thread_id: str, data: Mapping[str, Any]) -> str:
    return _encode_object(f"the state of thread {thread_id!r}", data)


def decode_state(thread_id: str, text: str | bytes, version: int) -> ThreadState:
    return ThreadState(_decode_object(f"state of thread {thread_id!r}", text), version)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One thread event as a store keeps it: scalars and JSON text."""

    id: str
    kind: str
    data: str
    created_at: float


def encode_event(thread_id: str, event: ThreadEvent) -> StoredEvent:
    def bad(reason: str) -> StoreError:
        return StoreError(f"cannot store event {event.id!r} in thread {thread_id!r}: {reason}")

    if not isinstance(event.id, str) or not event.id:
        raise bad("its id must be a non-empty string")
    if not isinstance(event.kind, str) or not event.kind:
        raise bad("its kind must be a non-empty string")
    if isinstance(event.created_at, bool) or not isinstance(event.created_at, int | float):
        raise bad("created_at must be a number of seconds")
    data = _encode_object(f"the data of event {event.id!r} in thread {thread_id!r}", event.data)
    return StoredEvent(event.id, event.kind, data, float(event.created_at))


def decode_event(thread_id: str, stored: StoredEvent) -> ThreadEvent:
    data = _decode_object(f"event {stored.id!r} of thread {thread_id!r}", stored.data)
    return ThreadEvent(kind=stored.kind, data=data, id=stored.id, created_at=stored.created_at)


def check_claim(holder: str, lease: float | None = None) -> None:
    """A claim's holder and lease, checked before any store is asked."""
    if not isinstance(holder, str) or not holder:
        raise ValueError(f"a claim's holder must be a non-empty string, not {holder!r}")
    if lease is not None and not (isinstance(lease, int | float) and 0 < lease < 1e9):
        raise ValueError(f"a claim's lease must be a positive number of seconds, not {lease!r}")


def check_owner(owner: str) -> None:
    if not isinstance(owner, str):
        raise ValueError(f"a thread's owner must be a string, not {type(owner).__name__}")
