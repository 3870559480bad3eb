"""The tool-call pipeline: the extension API for stage authors and embedders.

A :class:`Pipeline` is a list of :class:`Stage` objects, built by
:func:`build_pipeline` from names and factories, in front of :class:`Execute`. The
default order (:func:`default_stages`): turn_dedup -> memo -> local_cache ->
single_flight -> (shared_cache -> shared_flight ->) batch -> execute. Only
read-only calls (those with a key) are ever answered by a stage; a side-effecting
call passes through every stage to execute, and the stages that keep results drop
what its declared tags invalidate, whatever its outcome.
"""

import importlib as _importlib
import typing as _typing

from ._builder import (
    DEFAULT_STAGES,
    SHARED_STAGES,
    PipelineResources,
    StageFactory,
    build_pipeline,
    configured_stages,
    default_stages,
    describe_pipeline,
    stage_names,
)
from ._lru import CacheStatistics, TTLCache
from ._pipeline import Pipeline
from ._shared import SharedExecution
from ._stage import Stage, StageStatistics
from ._types import (
    CallContext,
    Replayed,
    RunState,
    RunStats,
    StatsRecorder,
    ToolCall,
    ToolHandler,
    ToolOutcome,
)
from .batch import Batch, Batcher
from .execute import Execute
from .keys import call_key, canonical_json, scope_identity
from .local_cache import LocalCache
from .memo import Memo
from .processor import ResponseProcessor, TurnOutcomes
from .single_flight import FlightStatistics, FlightTable, SingleFlight
from .turn_dedup import TurnDedup

if _typing.TYPE_CHECKING:
    from .shared_cache import SharedCache, SharedCacheStatistics
    from .shared_flight import SharedFlight, SharedFlightStatistics

_REDIS_STAGES = {"SharedCache": "shared_cache", "SharedCacheStatistics": "shared_cache",
                 "SharedFlight": "shared_flight", "SharedFlightStatistics": "shared_flight"}


def __getattr__(name: str) -> _typing.Any:
    """The Redis stages load redis-py: imported on first use, not with the package."""
    module = _REDIS_STAGES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_REDIS_STAGES})

__all__ = [
    "DEFAULT_STAGES",
    "SHARED_STAGES",
    "Batch",
    "Batcher",
    "CacheStatistics",
    "CallContext",
    "Execute",
    "FlightStatistics",
    "FlightTable",
    "LocalCache",
    "Memo",
    "Pipeline",
    "PipelineResources",
    "Replayed",
    "ResponseProcessor",
    "RunState",
    "RunStats",
    "SharedCache",
    "SharedCacheStatistics",
    "SharedExecution",
    "SharedFlight",
    "SharedFlightStatistics",
    "SingleFlight",
    "Stage",
    "StageFactory",
    "StageStatistics",
    "StatsRecorder",
    "TTLCache",
    "ToolCall",
    "ToolHandler",
    "ToolOutcome",
    "TurnDedup",
    "TurnOutcomes",
    "build_pipeline",
    "call_key",
    "canonical_json",
    "configured_stages",
    "default_stages",
    "describe_pipeline",
    "scope_identity",
    "stage_names",
]
