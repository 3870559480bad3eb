"""agentrt: an async agent runtime on the Anthropic Messages API.

Import everything from here; deeper paths are internal and may move.
"""

from ._context import RunContext
from ._errors import (
    AgentRtError,
    BackendUnavailableError,
    ConfigError,
    DependencyCycleError,
    MalformedReplyError,
    MissingParameterError,
    ModelError,
    StoreError,
    StreamInterruptedError,
    TargetError,
    ThreadNotFoundError,
    ToolDefinitionError,
    ToolError,
    ToolExecutionError,
    UsageError,
)
from ._events import (
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from ._result import RunResult
from .agent import Agent
from .jit import GuideCache, JITConfig, MemoryGuideCache, ToolRule
from .llm._usage import Usage
from .log import configure_logging
from .pipeline import CallContext, RunStats, ToolCall, ToolHandler, ToolOutcome
from .runtime import Runtime
from .settings import DEFAULT_MODEL, Settings, load_settings
from .thread import Message, ThreadInfo, ThreadStore
from .thread.memory import MemoryThreadStore
from .thread.sqlite import SQLiteThreadStore
from .tools import FunctionSpec, Tool, ToolContent, function, tool_reference

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Agent",
    "AgentRtError",
    "BackendUnavailableError",
    "CallContext",
    "ConfigError",
    "DependencyCycleError",
    "FunctionSpec",
    "GuideCache",
    "JITConfig",
    "MalformedReplyError",
    "MemoryGuideCache",
    "MemoryThreadStore",
    "Message",
    "MissingParameterError",
    "ModelError",
    "RunContext",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunStats",
    "Runtime",
    "SQLiteThreadStore",
    "Settings",
    "StoreError",
    "StreamInterruptedError",
    "TargetError",
    "TextDelta",
    "ThreadInfo",
    "ThreadNotFoundError",
    "ThreadStore",
    "Tool",
    "ToolCall",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolContent",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "ToolHandler",
    "ToolOutcome",
    "ToolRule",
    "TurnFinished",
    "Usage",
    "UsageError",
    "__version__",
    "configure_logging",
    "function",
    "load_settings",
    "tool_reference",
]
