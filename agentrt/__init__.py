"""agentrt: an async agent runtime on the Anthropic Messages API.

Import everything from here; deeper paths are internal and may move. Two APIs:

- the user API (``Agent``, ``Runtime``, ``Tool``, ``function``, run results and
  events, settings, stores, errors), everything an application needs;
- the extension API for those who write pipeline stages (``Stage``, ``CallContext``,
  ``ToolCall``, ``ToolOutcome``, ``ToolHandler``), also in :mod:`agentrt.pipeline`
  with the rest of what stage authors use.

Names load on first use (as pydantic's do): ``import agentrt`` imports neither the
anthropic SDK, nor redis-py, nor the JIT package; each comes in when a part that
needs it is used.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._approvals import ApprovalPolicy, ApprovalRequest, PendingCall, Verdict
    from ._context import RunContext
    from ._errors import (
        AgentRtError,
        ApprovalError,
        BackendUnavailableError,
        ConfigError,
        DependencyCycleError,
        MalformedReplyError,
        MissingParameterError,
        ModelError,
        OutputValidationError,
        StoreError,
        StreamInterruptedError,
        TargetError,
        ThreadBusyError,
        ThreadChangedError,
        ThreadNotFoundError,
        ThreadOwnerError,
        ToolDefinitionError,
        ToolError,
        ToolExecutionError,
        UsageError,
    )
    from ._events import (
        ApprovalRequired,
        PartialOutput,
        RunEvent,
        RunFinished,
        TextDelta,
        ToolCallFinished,
        ToolCallStarted,
        TurnFinished,
    )
    from ._result import RunResult
    from .agent import Agent
    from .context import ContextPolicy, register_model
    from .jit import GuideCache, JITConfig, MemoryGuideCache, ToolRule
    from .llm._usage import Usage, UsageLimits
    from .log import configure_logging
    from .pipeline import CallContext, RunStats, Stage, ToolCall, ToolHandler, ToolOutcome
    from .runtime import Runtime
    from .settings import DEFAULT_MODEL, Settings, load_settings
    from .thread import Message, ThreadInfo, ThreadStore
    from .thread.memory import MemoryThreadStore
    from .thread.sqlite import SQLiteThreadStore
    from .tools import FunctionSpec, ThreadView, Tool, ToolContent, function, tool_reference

__version__ = "0.1.0"

# name -> the module that defines it
_USER_API = {
    "Agent": ".agent",
    "Runtime": ".runtime",
    "ContextPolicy": ".context",
    "register_model": ".context",
    "RunContext": "._context",
    "RunResult": "._result",
    "RunStats": ".pipeline._types",
    "Usage": ".llm._usage",
    "UsageLimits": ".llm._usage",
    "RunEvent": "._events",
    "ApprovalRequired": "._events",
    "ApprovalPolicy": "._approvals",
    "ApprovalRequest": "._approvals",
    "PendingCall": "._approvals",
    "Verdict": "._approvals",
    "ApprovalError": "._errors",
    "RunFinished": "._events",
    "TextDelta": "._events",
    "PartialOutput": "._events",
    "ToolCallFinished": "._events",
    "ToolCallStarted": "._events",
    "TurnFinished": "._events",
    "Tool": ".tools",
    "ThreadView": ".tools",
    "FunctionSpec": ".tools",
    "ToolContent": ".tools",
    "function": ".tools",
    "tool_reference": ".tools",
    "JITConfig": ".jit",
    "ToolRule": ".jit",
    "GuideCache": ".jit",
    "MemoryGuideCache": ".jit",
    "Settings": ".settings",
    "DEFAULT_MODEL": ".settings",
    "load_settings": ".settings",
    "configure_logging": ".log",
    "Message": ".thread",
    "ThreadInfo": ".thread",
    "ThreadStore": ".thread",
    "MemoryThreadStore": ".thread.memory",
    "SQLiteThreadStore": ".thread.sqlite",
    "AgentRtError": "._errors",
    "BackendUnavailableError": "._errors",
    "ConfigError": "._errors",
    "DependencyCycleError": "._errors",
    "MalformedReplyError": "._errors",
    "MissingParameterError": "._errors",
    "ModelError": "._errors",
    "OutputValidationError": "._errors",
    "StoreError": "._errors",
    "StreamInterruptedError": "._errors",
    "TargetError": "._errors",
    "ThreadNotFoundError": "._errors",
    "ThreadBusyError": "._errors",
    "ThreadChangedError": "._errors",
    "ThreadOwnerError": "._errors",
    "ToolDefinitionError": "._errors",
    "ToolError": "._errors",
    "ToolExecutionError": "._errors",
    "UsageError": "._errors",
}
_EXTENSION_API = {
    "Stage": ".pipeline._stage",
    "CallContext": ".pipeline._types",
    "ToolCall": ".pipeline._types",
    "ToolHandler": ".pipeline._types",
    "ToolOutcome": ".pipeline._types",
}
_EXPORTS = {**_USER_API, **_EXTENSION_API}

__all__ = [
    "DEFAULT_MODEL",
    "Agent",
    "AgentRtError",
    "ApprovalError",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalRequired",
    "BackendUnavailableError",
    "CallContext",
    "ConfigError",
    "ContextPolicy",
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
    "OutputValidationError",
    "PartialOutput",
    "PendingCall",
    "RunContext",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunStats",
    "Runtime",
    "SQLiteThreadStore",
    "Settings",
    "Stage",
    "StoreError",
    "StreamInterruptedError",
    "TargetError",
    "TextDelta",
    "ThreadBusyError",
    "ThreadChangedError",
    "ThreadInfo",
    "ThreadNotFoundError",
    "ThreadOwnerError",
    "ThreadStore",
    "ThreadView",
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
    "UsageLimits",
    "Verdict",
    "__version__",
    "configure_logging",
    "function",
    "load_settings",
    "register_model",
    "tool_reference",
]


def __getattr__(name: str) -> _typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
