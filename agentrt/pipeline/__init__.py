"""The tool-call pipeline: each stage its own module, folded by build_pipeline.

Order (``DEFAULT_STAGES``): turn_dedup -> memo -> local_cache -> single_flight ->
batch -> execute. Only read-only calls (those with a key) are ever answered by a
stage; a side-effecting call passes through every stage to execute, and stages
drop what its declared tags invalidate once it succeeds.
"""

from ._builder import (
    DEFAULT_STAGES,
    PipelineResources,
    StageFactory,
    build_pipeline,
    describe_pipeline,
    register_stage,
    stage_names,
)
from ._lru import CacheStatistics, TTLCache
from ._shared import SharedExecution
from ._types import (
    CallContext,
    Forgetting,
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

__all__ = [
    "DEFAULT_STAGES",
    "Batch",
    "Batcher",
    "CacheStatistics",
    "CallContext",
    "Execute",
    "FlightStatistics",
    "FlightTable",
    "Forgetting",
    "LocalCache",
    "Memo",
    "PipelineResources",
    "ResponseProcessor",
    "RunStats",
    "SharedExecution",
    "SingleFlight",
    "StageFactory",
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
    "describe_pipeline",
    "register_stage",
    "scope_identity",
    "stage_names",
]
