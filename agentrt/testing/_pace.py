"""Pacing a scripted stream: a delay between events, a token rate, and holds at chosen blocks.

A real reply streams for hundreds of milliseconds to seconds, and a tool_use block is
complete long before the message ends; tests and benchmarks of what a client does
meanwhile (eager tool execution) need the fake to take its time, and tests need to
hold the stream at a known point without sleeping: a :class:`Pause` is released by the
test, and tells the test when the stream has reached it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Pacer", "Pause"]

# about four characters to a token, as the fake's usage estimates count them
CHARS_PER_TOKEN = 4


class Pause:
    """Holds a streamed reply just after block ``after_block``'s ``content_block_stop``
    (0 is the first block), until :meth:`release`. ``await pause.reached()`` returns once
    the stream is held there. One pause holds one stream once; a non-streaming request
    ignores it."""

    def __init__(self, after_block: int) -> None:
        if after_block < 0:
            raise ValueError(f"after_block: must be >= 0, got {after_block}")
        self.after_block = after_block
        self._reached: anyio.Event | None = None
        self._released: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"Pause(after_block={self.after_block})"

    def _events(self) -> tuple[anyio.Event, anyio.Event]:
        if self._reached is None or self._released is None:
            self._reached, self._released = anyio.Event(), anyio.Event()
        return self._reached, self._released

    async def reached(self) -> None:
        """Wait until the stream is held at this pause."""
        await self._events()[0].wait()

    def release(self) -> None:
        """Let the stream go on (at once if it has not reached the pause yet)."""
        self._events()[1].set()

    async def hold(self) -> None:
        """The stream's side: say it is here, wait for the release."""
        reached, released = self._events()
        reached.set()
        await released.wait()


class Pacer:
    """What a reply's stream waits before and after each event (see ``Reply``'s
    ``event_delay``, ``tokens_per_second`` and ``pauses``)."""

    def __init__(self, event_delay: float, tokens_per_second: float | None,
                 pauses: Sequence[Pause]) -> None:
        self.event_delay = event_delay
        self.tokens_per_second = tokens_per_second
        self.pauses = {pause.after_block: pause for pause in pauses}
        self.active = bool(self.event_delay or self.tokens_per_second or self.pauses)

    async def before(self, data: Mapping[str, Any] | None) -> None:
        wait = self.event_delay
        if self.tokens_per_second and data is not None and data.get("type") == (
                "content_block_delta"):
            delta = data["delta"]
            text = delta.get("text") or delta.get("partial_json") or delta.get("thinking") or ""
            wait += max(1.0, len(text) / CHARS_PER_TOKEN) / self.tokens_per_second
        if wait:
            await anyio.sleep(wait)

    async def after(self, data: Mapping[str, Any] | None) -> None:
        if data is not None and data.get("type") == "content_block_stop":
            pause = self.pauses.get(data["index"])
            if pause is not None:
                await pause.hold()
