"""The tool-call pipeline: each stage its own module, folded by build_pipeline."""

from ._builder import StageFactory, build_pipeline
from ._types import CallContext, RunStats, StatsRecorder, ToolCall, ToolHandler, ToolOutcome
from .execute import Execute
from .processor import ResponseProcessor, TurnOutcomes

__all__ = [
    "CallContext",
    "Execute",
    "ResponseProcessor",
    "RunStats",
    "StageFactory",
    "StatsRecorder",
    "ToolCall",
    "ToolHandler",
    "ToolOutcome",
    "TurnOutcomes",
    "build_pipeline",
]
