"""The stored form of a conversation: messages exactly as the Messages API takes them.

Content blocks are kept as plain JSON dicts (the API's own param shape), so a
thread round-trips byte for byte through any store and is sent back unchanged;
that is what keeps the provider's prompt cache warm across a resume.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ContentBlock", "Message", "Role", "ThreadEvent", "ThreadInfo", "ThreadState",
           "new_event_id", "new_message_id", "new_thread_id"]

Role: TypeAlias = Literal["user", "assistant"]
ContentBlock: TypeAlias = dict[str, Any]


def new_thread_id() -> str:
    """A fresh thread id: ``thr_`` and 32 random hex digits."""
    return f"thr_{uuid.uuid4().hex}"


def new_message_id() -> str:
    """A fresh message id, the key that makes appends idempotent."""
    return f"umsg_{uuid.uuid4().hex}"


def new_event_id() -> str:
    """A fresh thread event id, the key that makes event appends idempotent."""
    return f"evt_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a thread.

    ``id`` is the API's ``msg_...`` id for assistant replies and a generated
    ``umsg_...`` id otherwise; stores use it to make appends idempotent.
    ``metadata`` carries what is not sent to the model (usage, stop reason, model).
    """

    role: Role
    content: str | list[ContentBlock]
    id: str = field(default_factory=new_message_id)
    created_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_param(self) -> dict[str, Any]:
        """The ``messages[i]`` entry for a request."""
        return {"role": self.role, "content": self.content}

    def blocks(self) -> list[ContentBlock]:
        """Content as a list of blocks, whatever form it was stored in."""
        if isinstance(self.content, str):
            return [{"type": "text", "text": self.content}]
        return self.content

    def to_json(self) -> dict[str, Any]:
        """The message as the stores keep it (see :meth:`from_json`)."""
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "created_at": self.created_at,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """A message read back from a store; ``ValueError`` for a malformed one."""
        role = data.get("role")
        if role not in ("user", "assistant"):
            raise ValueError(f"stored message has invalid role {role!r}")
        content = data.get("content")
        if not isinstance(content, str | list):
            raise ValueError("stored message content must be a string or a list of blocks")
        return cls(
            role=role,
            content=content,
            id=str(data["id"]),
            created_at=float(data.get("created_at", 0.0)),
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A thread's header. ``owner`` is the identity that created it, as
    :func:`~agentrt.thread.owner_of` writes it ("" for none, and for threads
    created before threads had owners)."""

    id: str
    created_at: float
    updated_at: float
    message_count: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    owner: str = ""


@dataclass(frozen=True, slots=True)
class ThreadState:
    """A thread's own JSON document beside its messages (what a paused run waits
    for, say), with a version that every successful ``set_state`` bumps: the
    optimistic check that keeps two writers from overwriting each other."""

    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True, slots=True)
class ThreadEvent:
    """Something that happened to a thread and is not a message (a context summary,
    say): kept in order beside the messages, never sent to the model as such.
    ``id`` makes appends idempotent, as ``Message.id`` does."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_event_id)
    created_at: float = field(default_factory=time.time)
