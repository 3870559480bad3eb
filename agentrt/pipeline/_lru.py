"""An LRU map with per-entry TTL and tags, bounded by entries and by bytes.

Expiry is measured on a monotonic clock (injectable, so tests move time instead
of waiting). Values are stored as they are given; callers store immutable
outcomes (the result is its JSON text), so a hit can never be mutated by the
tool or the caller that received it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["CacheStatistics", "Entry", "TTLCache"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """A snapshot of a :class:`TTLCache`: what it holds, and its counters since it was
    made (``stale_hits``: expired entries served within their stale window)."""

    entries: int
    bytes: int
    hits: int
    stale_hits: int
    misses: int
    evictions: int
    expirations: int
    invalidations: int


@dataclass(slots=True)
class Entry(Generic[V]):
    """A cached value. ``fresh`` is as of the :meth:`TTLCache.get` that returned it;
    ``refreshing`` is set by a caller that started a background refresh of it."""

    value: V
    size: int
    fresh_until: float
    stale_until: float
    tags: tuple[str, ...]
    fresh: bool = True
    refreshing: bool = False


class TTLCache(Generic[V]):
    """An LRU map with a TTL and tags per entry, bounded by entries and by bytes (the
    local cache's storage)."""

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries <= 0 or max_bytes <= 0:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._data: OrderedDict[str, Entry[V]] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self._bytes = 0
        self._hits = self._stale_hits = self._misses = 0
        self._evictions = self._expirations = self._invalidations = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> Entry[V] | None:
        """Fresh entries, and stale ones still inside their stale-while-revalidate window
        (``fresh`` False)."""
        entry = self._data.get(key)
        if entry is None:
            self._misses += 1
            return None
        now = self.clock()
        if now < entry.fresh_until:
            self._data.move_to_end(key)
            self._hits += 1
            return entry
        if now < entry.stale_until:
            self._stale_hits += 1
            entry.fresh = False
            return entry
        self._drop(key)
        self._expirations += 1
        self._misses += 1
        return None

    def set(self, key: str, value: V, *, ttl: float, size: int, stale: float = 0.0,
            tags: tuple[str, ...] = ()) -> bool:
        """False (and nothing stored) when the value alone is larger than the byte bound."""
        if size > self.max_bytes:
            return False
        if key in self._data:
            self._drop(key)
        now = self.clock()
        self._data[key] = Entry(value, size, now + ttl, now + ttl + stale, tags)
        self._bytes += size
        for tag in tags:
            self._tags.setdefault(tag, set()).add(key)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._data)))
            self._evictions += 1
        return True

    def delete(self, key: str) -> None:
        """Drop the entry of ``key``, if any."""
        if key in self._data:
            self._drop(key)

    def invalidate(self, tags: Iterable[str]) -> int:
        """Drop every entry tagged with any of ``tags``; the number dropped."""
        keys = set().union(*(self._tags.get(tag, ()) for tag in tags))
        for key in keys:
            self._drop(key)
        self._invalidations += len(keys)
        return len(keys)

    def clear(self) -> None:
        """Drop every entry (counted as invalidations)."""
        self._invalidations += len(self._data)
        self._data.clear()
        self._tags.clear()
        self._bytes = 0

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(len(self._data), self._bytes, self._hits, self._stale_hits,
                               self._misses, self._evictions, self._expirations,
                               self._invalidations)

    def _drop(self, key: str) -> None:
        entry = self._data.pop(key)
        self._bytes -= entry.size
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]
