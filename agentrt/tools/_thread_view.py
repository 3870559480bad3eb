"""ThreadView: what a tool may know of the thread it runs in, read-only.

A tool that needs the conversation so far (a summarizer, a tool that quotes an
earlier result) asks for ``thread: ThreadView`` in its constructor, and the JIT
loader injects one (by that name, or by the type). It reads the runtime's
thread store; it cannot append, and it does not reach the loop that runs the
thread, so a tool cannot start a turn or change what the loop does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..thread._messages import Message
    from ..thread._store import ThreadStore

__all__ = ["ThreadView"]


class ThreadView:
    """One thread of a store, read-only: its id and its messages."""

    __slots__ = ("_store", "_thread_id")

    def __init__(self, thread_id: str, store: ThreadStore) -> None:
        self._thread_id = thread_id
        self._store = store

    @property
    def thread_id(self) -> str:
        return self._thread_id

    async def messages(self) -> list[Message]:
        """The thread's messages as stored now, oldest first (``ThreadNotFoundError``
        for a thread not stored yet)."""
        return await self._store.messages(self._thread_id)

    def __repr__(self) -> str:
        return f"ThreadView({self._thread_id!r})"
