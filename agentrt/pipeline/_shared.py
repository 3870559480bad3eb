"""One execution, many waiters: the primitive behind single-flight and batching.

The execution runs in a child task of the caller that started it (the leader),
inside a shielded cancel scope, so that cancelling the leader does not take the
result away from the others waiting on it. It is cancelled only once nobody is
left waiting: the leader gone and every waiter gone. A waiter's own
cancellation never touches the execution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

import anyio

from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["SharedExecution"]

T = TypeVar("T")
log = get_logger("agentrt.pipeline")


class SharedExecution(Generic[T]):
    def __init__(self, on_abandon: T) -> None:
        """``on_abandon`` is what the execution yields if it is cancelled or raises."""
        self._done = anyio.Event()
        self._result: T = on_abandon
        self._fallback = on_abandon
        self._waiters = 0
        self._leader_gone = False
        self._scope: anyio.CancelScope | None = None

    @property
    def waiters(self) -> int:
        return self._waiters

    async def lead(self, run: Callable[[], Awaitable[T]]) -> T:
        """Runs ``run`` for everyone; returns its result to the leader."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._execute, run)
            try:
                await self._done.wait()
            except anyio.get_cancelled_exc_class():
                self._leader_gone = True
                self._abandon_if_alone()
                raise
        return self._result

    async def join(self) -> T:
        self._waiters += 1
        try:
            await self._done.wait()
        finally:
            self._waiters -= 1
            self._abandon_if_alone()
        return self._result

    def _abandon_if_alone(self) -> None:
        if self._leader_gone and self._waiters == 0 and self._scope is not None:
            self._scope.cancel()

    async def _execute(self, run: Callable[[], Awaitable[T]]) -> None:
        try:
            with anyio.CancelScope(shield=True) as self._scope:
                self._result = await run()
        except Exception:  # handlers answer with outcomes; an exception here is a bug
            log.exception("pipeline.shared_execution_failed")
            self._result = self._fallback
        finally:
            self._done.set()
