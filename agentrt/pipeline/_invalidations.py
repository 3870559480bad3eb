"""Invalidations Redis could not take, kept until it answers again.

A write made while Redis is down still makes what it names stale. Its tags are kept
here (in this process's memory) and flushed, with one bump of every tag's counter,
as soon as Redis answers: by the invalidation listener when it reconnects, and by
the shared cache before it serves anything. Until then this process serves none of
its own results under those tags, and its shared cache steps aside.

Other processes hear of a flush on the invalidation channel, and a process that was
not subscribed when it happened notices it by the generation counter, which every
flush bumps and every listener reads when it (re)subscribes: a changed generation
means writes it did not hear of, and it drops its whole local cache.

A process that dies during the outage loses the invalidations it kept: results under
those tags stay until their TTL (documented; nothing else can know of the write).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .._redis import execute
from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._redis import RedisGate

__all__ = ["PendingInvalidations", "bump_tags", "tag_key"]

log = get_logger("agentrt.tool")


def tag_key(gate: RedisGate, tag: str) -> str:
    return gate.key("tagv", "{tags}", tag)


def generation_key(gate: RedisGate) -> str:
    return gate.key("invalidate", "generation")


async def bump_tags(gate: RedisGate, r: Any, tags: list[str], *, generation: bool) -> int | None:
    """Bumps the tags' counters (every stored result under them is then stale, in every
    process), tells the other processes' local caches, and with ``generation`` bumps
    the generation too, returning its new value."""
    pipe = r.pipeline(transaction=False)
    for tag in tags:
        pipe.incr(tag_key(gate, tag))
    counters = await execute(pipe, raise_on_error=False)
    for tag, counter in zip(tags, counters, strict=True):
        if isinstance(counter, ResponseError):  # not an integer: reset it to a value no
            # stored result can carry, so every one of them is stale
            log.warning("tool.shared_corrupt", key=tag_key(gate, tag), what="tag counter",
                        action="reset")
            await r.set(tag_key(gate, tag), secrets.randbits(62))
        elif isinstance(counter, Exception):
            raise counter
    found = None
    if generation:
        try:
            found = int(await r.incr(generation_key(gate)))
        except ResponseError:  # not a number: a fresh one, which every listener sees changed
            found = secrets.randbits(62)
            await r.set(generation_key(gate), found)
    await r.publish(gate.key("invalidate"), json.dumps(tags))
    return found


class PendingInvalidations:
    """The tags this process invalidated while Redis was down (one per runtime)."""

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.generation: int | None = None  # the last one this process saw (None: none yet)
        self.missed = False

    def __bool__(self) -> bool:
        return bool(self.tags)

    def add(self, tags: Iterable[str]) -> None:
        self.tags.update(tags)

    def blocks(self, tags: Iterable[str]) -> bool:
        """Whether results under ``tags`` may be stale for this process."""
        return bool(self.tags) and not self.tags.isdisjoint(tags)

    async def flush(self, gate: RedisGate) -> bool:
        """Gives Redis what it missed; True when nothing is pending any more."""
        if not self.tags:
            return True
        tags = sorted(self.tags)
        from .._errors import BackendUnavailableError

        try:
            generation = await gate.run(
                lambda r: bump_tags(gate, r, tags, generation=True),
                what="flush pending invalidations")
        except BackendUnavailableError:
            return False
        self.tags.difference_update(tags)
        previous, self.generation = self.generation, generation
        if previous is not None and generation != previous + 1:
            self.missed = True  # another process flushed too: its message may be lost
        log.warning("tool.invalidations_flushed", tags=tags)
        return not self.tags

    def changed(self, generation: int) -> bool:
        """Record the generation read on (re)subscribing; True when it moved since this
        process last saw it (a flush it may not have heard of), or its own flush found
        another's."""
        previous, self.generation = self.generation, generation
        missed, self.missed = self.missed, False
        return missed or (previous is not None and generation != previous)
