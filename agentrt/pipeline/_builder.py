"""Folds a declarative list of stage names around the terminal handler.

Stages are looked up by name in a registry, so settings choose and order them
(``AGENTRT_PIPELINE='["turn_dedup","memo"]'``) and a later package (the Redis
stages) adds its own with :func:`register_stage` without touching this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .._errors import ConfigError
from ._lru import TTLCache
from .batch import Batch, Batcher
from .local_cache import LocalCache
from .memo import Memo
from .shared_cache import SharedCache
from .shared_flight import SharedFlight
from .single_flight import FlightTable, SingleFlight
from .turn_dedup import TurnDedup

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .._redis import RedisGate
    from ..settings import Settings
    from ._types import ToolHandler, ToolOutcome

__all__ = [
    "DEFAULT_STAGES",
    "PipelineResources",
    "StageFactory",
    "build_pipeline",
    "describe_pipeline",
    "register_stage",
    "stage_names",
]

StageFactory: TypeAlias = Callable[["ToolHandler"], "ToolHandler"]


@dataclass(slots=True)
class PipelineResources:
    """What the stages of every agent in one process share (owned by the Runtime)."""

    settings: Settings
    local_cache: TTLCache[ToolOutcome]
    flights: FlightTable
    batcher: Batcher
    spawn: Callable[[Callable[[], Awaitable[None]]], bool] | None = None
    redis: RedisGate | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      spawn: Callable[[Callable[[], Awaitable[None]]], bool] | None = None,
                      clock: Callable[[], float] = time.monotonic,
                      redis: RedisGate | None = None) -> PipelineResources:
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
        )


StageBuilder: TypeAlias = Callable[[PipelineResources], StageFactory]

_REGISTRY: dict[str, tuple[StageBuilder, str]] = {}
DEFAULT_STAGES = ("turn_dedup", "memo", "local_cache", "single_flight", "batch")


def register_stage(name: str, builder: StageBuilder, description: str) -> None:
    _REGISTRY[name] = (builder, description)


def stage_names() -> list[str]:
    return list(_REGISTRY)


def _checked(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(map(repr, unknown))}; known: "
                          f"{', '.join(_REGISTRY)}", field="pipeline")
    if len(set(names)) != len(names):
        raise ConfigError("a stage is listed twice", field="pipeline")
    return list(names)


def build_pipeline(names: Sequence[str | StageFactory], resources: PipelineResources | None,
                   terminal: ToolHandler) -> ToolHandler:
    """``names[0]`` sees a call first; the terminal handler (execute) sees it last.

    An entry may also be a stage factory itself (a custom stage, or a test double).
    """
    _checked([n for n in names if isinstance(n, str)])
    handler = terminal
    for entry in reversed(names):
        if isinstance(entry, str):
            if resources is None:
                raise ConfigError("named stages need the runtime's resources",
                                  field="pipeline")
            handler = _REGISTRY[entry][0](resources)(handler)
        else:
            handler = entry(handler)
    return handler


def describe_pipeline(names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, what it does) for each stage in order, then execute."""
    return [(n, _REGISTRY[n][1]) for n in _checked(names)] + [
        ("execute", "run the tool function (timeout; exception -> is_error result)")]


def _local(res: PipelineResources) -> StageFactory:
    return lambda nxt: LocalCache(
        nxt, res.local_cache, default_ttl=res.settings.cache_ttl,
        stale_while_revalidate=res.settings.stale_while_revalidate, spawn=res.spawn)


register_stage("turn_dedup", lambda res: TurnDedup,
               "identical read-only calls in one assistant message run once")
register_stage("memo", lambda res: Memo,
               "a read-only call made earlier in this thread is answered again")
register_stage("local_cache", _local,
               "TTL + LRU cache shared by every thread of this process")
register_stage("single_flight", lambda res: lambda nxt: SingleFlight(nxt, res.flights),
               "concurrent identical calls in this process share one execution")
def _needs_redis(res: PipelineResources, stage: str) -> RedisGate:
    if res.redis is None:
        raise ConfigError(f"stage {stage!r} needs Redis: set AGENTRT_REDIS_URL",
                          field="pipeline")
    return res.redis


def _shared_cache(res: PipelineResources) -> StageFactory:
    gate = _needs_redis(res, "shared_cache")
    return lambda nxt: SharedCache(nxt, gate, default_ttl=res.settings.cache_ttl,
                                   max_bytes=res.settings.shared_cache_max_bytes)


def _shared_flight(res: PipelineResources) -> StageFactory:
    gate = _needs_redis(res, "shared_flight")
    return lambda nxt: SharedFlight(nxt, gate, lease_ttl=res.settings.lease_ttl,
                                    default_timeout=res.settings.tool_timeout)


register_stage("shared_cache", _shared_cache,
               "results in Redis for every process, per tenant (needs redis_url)")
register_stage("shared_flight", _shared_flight,
               "identical calls across processes share one execution (Redis lease)")
register_stage("batch", lambda res: lambda nxt: Batch(nxt, res.batcher),
               "one upstream request for a function's gathered inputs (batch form)")
