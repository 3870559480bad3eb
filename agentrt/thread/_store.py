"""The one interface every thread store implements (memory, SQLite, Redis)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._messages import Message, ThreadInfo

__all__ = ["ThreadStore"]


@runtime_checkable
class ThreadStore(Protocol):
    """Durable home of threads and their messages.

    Contract (checked for every implementation by ``tests/thread/conformance.py``):

    - ``append`` is atomic: all of ``messages`` are stored, in order, or none is;
      two writers racing never lose or interleave a batch;
    - it is idempotent by ``Message.id``: a message whose id the thread already
      holds is skipped, so a retried append after a crash never duplicates;
    - ``messages`` returns exactly what was appended (ids, content blocks, order).
    """

    async def create_thread(
        self,
        thread_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> ThreadInfo:
        """Create a thread (a new id when none is given).

        Raises ``StoreError`` if it exists, unless ``exist_ok``.
        """
        ...

    async def get_thread(self, thread_id: str) -> ThreadInfo | None: ...

    async def list_threads(self, *, limit: int = 100) -> list[ThreadInfo]:
        """Threads, most recently updated first."""
        ...

    async def append(self, thread_id: str, messages: Sequence[Message]) -> None:
        """Raises ``ThreadNotFoundError`` if the thread does not exist."""
        ...

    async def messages(self, thread_id: str) -> list[Message]:
        """Raises ``ThreadNotFoundError`` if the thread does not exist."""
        ...

    async def delete_thread(self, thread_id: str) -> None: ...

    async def aclose(self) -> None: ...
