"""Threads: the message model, the store protocol, the stores, and the loop over them."""

from ._messages import ContentBlock, Message, Role, ThreadInfo, new_message_id, new_thread_id
from ._store import ThreadStore

__all__ = [
    "ContentBlock",
    "Message",
    "Role",
    "ThreadInfo",
    "ThreadStore",
    "new_message_id",
    "new_thread_id",
]
