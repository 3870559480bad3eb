"""Threads: the message model, the store protocol, the stores, and the loop over them."""

from ._messages import (
    ContentBlock,
    Message,
    Role,
    ThreadEvent,
    ThreadInfo,
    ThreadState,
    new_event_id,
    new_message_id,
    new_thread_id,
)
from ._owners import owner_of
from ._store import ThreadStore

__all__ = [
    "ContentBlock",
    "Message",
    "Role",
    "ThreadEvent",
    "ThreadInfo",
    "ThreadState",
    "ThreadStore",
    "new_event_id",
    "new_message_id",
    "new_thread_id",
    "owner_of",
]
