"""One execution, many waiters: the primitive behind single-flight and batching.

The execution runs in the leader's own task: most executions are never joined, and
spawning a task for each would cost every call of every turn. While anyone else
waits on it, its cancel scope is shielded, so cancelling the leader does not take
the result away from them (the leader then leaves once the execution is done,
raising its cancellation, as it would leave a task group). When the last waiter
leaves, the shield drops and a cancellation of the leader that arrived meanwhile
takes effect: the execution is cancelled only once nobody is left waiting. A
waiter's own cancellation never touches the execution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["SharedExecution"]

T = TypeVar("T")
log = get_logger("agentrt.pipeline")


class SharedExecution(Generic[T]):
    """One execution that several callers wait for (see the module documentation for
    how cancellation is shared)."""

    def __init__(self, on_abandon: T) -> None:
        """``on_abandon`` is what the execution yields if it is cancelled or raises."""
        self._done: anyio.Event | None = None  # made by the first waiter
        self._finished = False
        self._result: T = on_abandon
        self._fallback = on_abandon
        self._waiters = 0
        self._joined = False
        self._scope: anyio.CancelScope | None = None
        # the leader's span (an OpenTelemetry SpanContext), for joiners to link to
        self.context: Any = None

    @property
    def waiters(self) -> int:
        return self._waiters

    async def lead(self, run: Callable[[], Awaitable[T]]) -> T:
        """Runs ``run`` for everyone; returns its result to the leader."""
        try:
            with anyio.CancelScope(shield=self._waiters > 0) as self._scope:
                try:
                    self._result = await run()
                except Exception:  # handlers answer with outcomes; an exception is a bug
                    log.exception("pipeline.shared_execution_failed")
                    self._result = self._fallback
        finally:
            self._finished = True
            if self._done is not None:
                self._done.set()
        if self._joined:  # a cancellation held off by the shield lands here
            await anyio.lowlevel.checkpoint_if_cancelled()
        return self._result

    async def join(self) -> T:
        """Wait for the execution's result as one more waiter."""
        if self._finished:
            return self._result
        self._waiters += 1
        self._joined = True
        if self._scope is not None:
            self._scope.shield = True
        if self._done is None:
            self._done = anyio.Event()
        try:
            await self._done.wait()
        finally:
            self._waiters -= 1
            if self._waiters == 0 and self._scope is not None and not self._finished:
                self._scope.shield = False  # a pending cancellation of the leader lands
        return self._result
