"""Builds a :class:`Pipeline` from a declarative list of stages.

An entry is a built-in stage's name (``"memo"``), or a factory given the next
handler: a :class:`Stage` subclass or any callable returning a handler (a custom
stage, a test double). Settings choose and order the built-in ones
(``AGENTRT_PIPELINE='["turn_dedup","memo"]'``); the default list lives here only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from .._errors import ConfigError
from ._lru import TTLCache
from ._pipeline import Pipeline, summary
from .batch import Batch, Batcher
from .local_cache import LocalCache
from .memo import Memo
from .single_flight import FlightTable, SingleFlight
from .turn_dedup import TurnDedup

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .._redis import RedisGate
    from ..settings import Settings
    from ._invalidations import PendingInvalidations
    from ._stage import Stage
    from ._types import ToolHandler, ToolOutcome

__all__ = [
    "DEFAULT_STAGES",
    "SHARED_STAGES",
    "PipelineResources",
    "StageFactory",
    "build_pipeline",
    "configured_stages",
    "default_stages",
    "describe_pipeline",
    "stage_names",
]

StageFactory: TypeAlias = Callable[["ToolHandler"], "ToolHandler"]

# single_flight before shared_cache: one caller per key per process reaches Redis, and
# the in-flight entry outlives the Redis write, so no caller slips in between
DEFAULT_STAGES = ("turn_dedup", "memo", "local_cache", "single_flight", "batch")
SHARED_STAGES = ("shared_cache", "shared_flight")


def default_stages(*, shared: bool) -> list[str]:
    """The default stage list; with ``shared`` (Redis configured) the Redis stages too."""
    if not shared:
        return list(DEFAULT_STAGES)
    return [*DEFAULT_STAGES[:4], *SHARED_STAGES, *DEFAULT_STAGES[4:]]


def configured_stages(settings: Settings) -> list[str]:
    """The stages the settings ask for: ``pipeline``, or the default for them."""
    if settings.pipeline is not None:
        return list(settings.pipeline)
    return default_stages(shared=settings.redis_url is not None)


@dataclass(slots=True)
class PipelineResources:
    """What the stages of every agent in one process share (owned by the Runtime)."""

    settings: Settings
    local_cache: TTLCache[ToolOutcome]
    flights: FlightTable
    batcher: Batcher
    spawn: Callable[[Callable[[], Awaitable[None]]], bool] | None = None
    redis: RedisGate | None = None
    pending: PendingInvalidations | None = None  # with Redis: what it has not taken yet

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      spawn: Callable[[Callable[[], Awaitable[None]]], bool] | None = None,
                      clock: Callable[[], float] = time.monotonic,
                      redis: RedisGate | None = None) -> PipelineResources:
        """What the stages of every agent of a runtime share, sized by ``settings``."""
        return cls(
            settings=settings,
            local_cache=TTLCache(max_entries=settings.local_cache_max_entries,
                                 max_bytes=settings.local_cache_max_bytes, clock=clock),
            flights=FlightTable(),
            batcher=Batcher(window=settings.batch_window, max_batch=settings.batch_max,
                            timeout=settings.tool_timeout,
                            max_result_chars=settings.max_result_chars),
            spawn=spawn,
            redis=redis,
            pending=_pending() if redis is not None else None,
        )

    def gate(self, stage: str) -> RedisGate:
        """The Redis gate for a shared stage; a ``ConfigError`` when Redis is not configured."""
        if self.redis is None:
            raise ConfigError(f"stage {stage!r} needs Redis: set AGENTRT_REDIS_URL",
                              field="pipeline")
        return self.redis


def _pending() -> PendingInvalidations:
    from ._invalidations import PendingInvalidations

    return PendingInvalidations()


def _local(res: PipelineResources, nxt: ToolHandler) -> Stage:
    return LocalCache(nxt, res.local_cache, default_ttl=res.settings.cache_ttl,
                      stale_while_revalidate=res.settings.stale_while_revalidate,
                      spawn=res.spawn, pending=res.pending)


# The Redis stages are imported when used: an agent without Redis never loads redis-py.
def _shared_cache_class() -> type[Stage]:
    from .shared_cache import SharedCache

    return SharedCache


def _shared_flight_class() -> type[Stage]:
    from .shared_flight import SharedFlight

    return SharedFlight


def _shared_cache(res: PipelineResources, nxt: ToolHandler) -> Stage:
    from .shared_cache import SharedCache

    gate = res.gate("shared_cache")
    assert res.pending is not None  # made with the gate
    return SharedCache(nxt, gate, default_ttl=res.settings.cache_ttl,
                       max_bytes=res.settings.shared_cache_max_bytes, pending=res.pending)


def _shared_flight(res: PipelineResources, nxt: ToolHandler) -> Stage:
    from .shared_flight import SharedFlight

    return SharedFlight(nxt, res.gate("shared_flight"), lease_ttl=res.settings.lease_ttl,
                        default_timeout=res.settings.tool_timeout)


# The built-in stages by name: their class (for its description) and how it is built.
_BUILT_IN: dict[str, tuple[Callable[[], type[Stage]],
                           Callable[[PipelineResources, ToolHandler], Stage]]] = {
    "turn_dedup": (lambda: TurnDedup, lambda res, nxt: TurnDedup(nxt)),
    "memo": (lambda: Memo, lambda res, nxt: Memo(nxt)),
    "local_cache": (lambda: LocalCache, _local),
    "single_flight": (lambda: SingleFlight, lambda res, nxt: SingleFlight(nxt, res.flights)),
    "shared_cache": (_shared_cache_class, _shared_cache),
    "shared_flight": (_shared_flight_class, _shared_flight),
    "batch": (lambda: Batch, lambda res, nxt: Batch(nxt, res.batcher)),
}


def stage_names() -> list[str]:
    """The built-in stages' names."""
    return list(_BUILT_IN)


def _checked(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in _BUILT_IN]
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(map(repr, unknown))}; known: "
                          f"{', '.join(_BUILT_IN)}", field="pipeline")
    if len(set(names)) != len(names):
        raise ConfigError("a stage is listed twice", field="pipeline")
    return list(names)


def build_pipeline(entries: Sequence[str | StageFactory], resources: PipelineResources | None,
                   terminal: ToolHandler) -> Pipeline:
    """``entries[0]`` sees a call first; the terminal handler (execute) sees it last."""
    _checked([e for e in entries if isinstance(e, str)])
    handler = terminal
    built: list[ToolHandler] = []
    for entry in reversed(entries):
        if isinstance(entry, str):
            if resources is None:
                raise ConfigError("named stages need the runtime's resources",
                                  field="pipeline")
            handler = _BUILT_IN[entry][1](resources, handler)
        else:
            handler = entry(handler)
        built.append(handler)
    return Pipeline(list(reversed(built)), terminal)


def describe_pipeline(names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, what it does) for each built-in stage in order, then execute."""
    return [(n, summary(_BUILT_IN[n][0]())) for n in _checked(names)] + [
        ("execute", "run the tool function (timeout; exception -> is_error result)")]
