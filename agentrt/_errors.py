"""Every exception agentrt raises, in one place.

Three families, kept apart because callers handle them differently::

    AgentRtError                  a failure at run time; the caller may retry
    ├── ModelError                the Messages API failed (translated from the SDK)
    │   ├── StreamInterruptedError   the stream ended before message_stop
    │   └── MalformedReplyError      the reply cannot be decoded (bad SSE frame, tool input
    │                                that is not a JSON object)
    ├── ToolExecutionError        a tool raised or timed out (becomes an is_error result)
    ├── StoreError                a thread store failed
    │   ├── ThreadNotFoundError
    │   └── ThreadChangedError       the thread changed under a writer (optimistic check)
    ├── ThreadBusyError           another run holds the thread (waited, then refused)
    ├── ThreadOwnerError          the run's identity is not the thread's owner
    ├── ApprovalError             a decision on calls that are not pending (or missing ones)
    ├── OutputValidationError     a typed run's answer stayed invalid after its retries
    └── BackendUnavailableError   an optional backend (Redis) cannot be reached
    UsageError                    the developer's mistake, raised at start-up
    ├── ConfigError               a setting or config file is invalid (names the field)
    ├── ToolDefinitionError       a Tool class or function is malformed
    ├── DependencyCycleError      tools require each other in a cycle (names it: a -> b -> a)
    ├── MissingParameterError     nothing provides a tool's constructor parameter
    └── TargetError               a CLI target cannot be loaded
    ToolError                     raised *by a tool* to hand the model an error message

Errors the *model* causes (unknown function, schema violation) are never raised:
they become ``tool_result`` blocks with ``is_error: true`` that the model can read.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentRtError",
    "ApprovalError",
    "BackendUnavailableError",
    "ConfigError",
    "DependencyCycleError",
    "MalformedReplyError",
    "MissingParameterError",
    "ModelError",
    "OutputValidationError",
    "StoreError",
    "StreamInterruptedError",
    "TargetError",
    "ThreadBusyError",
    "ThreadChangedError",
    "ThreadNotFoundError",
    "ThreadOwnerError",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "UsageError",
    "config_error",
]


class AgentRtError(Exception):
    """A failure while running; the message says what failed and why."""


class ModelError(AgentRtError):
    """The Messages API call failed, after the retries its answer allowed.

    ``retry_after`` (seconds) is set when the API asked for a wait longer than the
    runtime accepts (``llm_max_retry_wait``): the caller may try again after it.
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 error_type: str | None = None, request_id: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after


class StreamInterruptedError(ModelError):
    """The streamed reply stopped before ``message_stop``; nothing of it was stored."""


class MalformedReplyError(ModelError):
    """The reply could not be decoded: a garbled stream event, or a tool call whose
    input is not a JSON object. Nothing of it was stored; running again asks anew."""


class ToolExecutionError(AgentRtError):
    """A tool function raised or timed out."""


class StoreError(AgentRtError):
    """A thread store could not read or write."""


class ThreadNotFoundError(StoreError):
    """The thread id names no thread of this store (``thread_id`` says which)."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} does not exist in this store")
        self.thread_id = thread_id


class ThreadChangedError(StoreError):
    """A conditional write found the thread other than its writer last saw it: another
    run wrote to it meanwhile. Nothing of the write was stored; the writer's view of
    the thread is stale, so it must not retry blindly but start again from the store."""

    def __init__(self, thread_id: str, detail: str) -> None:
        super().__init__(f"thread {thread_id!r} changed under this writer: {detail}; "
                         "nothing was stored")
        self.thread_id = thread_id
        self.detail = detail


class ThreadBusyError(AgentRtError):
    """Another run holds the thread (one run per thread, across processes), and it was
    not released within the wait allowed (``thread_wait``). Try again later."""

    def __init__(self, thread_id: str, waited: float) -> None:
        super().__init__(f"thread {thread_id!r} is busy: another run holds it (waited "
                         f"{waited:g} s; raise thread_wait to wait longer)")
        self.thread_id = thread_id
        self.waited = waited


class ThreadOwnerError(AgentRtError):
    """The run's identity is not the one that created the thread. The owner is not
    named: the message must not tell one tenant who another is."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} belongs to another identity: this run's "
                         "identity may not read or continue it")
        self.thread_id = thread_id


class ApprovalError(AgentRtError):
    """Decisions that do not match the thread's pending calls: an id that is not
    pending (or was already decided otherwise), a pending call left undecided, or a
    resume of a thread that waits for nothing. Nothing was decided or run."""

    def __init__(self, thread_id: str, detail: str) -> None:
        super().__init__(f"thread {thread_id!r}: {detail}")
        self.thread_id = thread_id
        self.detail = detail


class OutputValidationError(AgentRtError):
    """A typed run's answer (``output_type``) failed validation on every attempt: the first
    and each of the ``output_retries`` the model was given, told what failed. ``errors``
    are the last attempt's (``loc`` like ``items.0.qty``, ``msg``, ``type``), ``text`` its
    raw answer; the thread holds every attempt."""

    def __init__(self, output_type: str, errors: list[dict[str, Any]], text: str, *,
                 attempts: int, thread_id: str) -> None:
        shown = "; ".join(f"{e['loc'] or '(the whole answer)'}: {e['msg']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(
            f"the model's answer is not a valid {output_type} after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}: {shown}{more}; its answer began {text[:200]!r} "
            f"(thread {thread_id!r}; raise output_retries to let the model try again)")
        self.output_type = output_type
        self.errors = errors
        self.text = text
        self.attempts = attempts
        self.thread_id = thread_id


class BackendUnavailableError(AgentRtError):
    """An optional backend cannot be reached; callers fall back to in-process layers."""


class UsageError(Exception):
    """The developer's mistake: raised at start-up, never mid-run."""


class ConfigError(UsageError):
    """A setting, config file or agent attribute is invalid; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class ToolDefinitionError(UsageError):
    """A Tool class or one of its functions cannot be turned into a tool definition."""


class DependencyCycleError(UsageError):
    """Tools whose ``requires`` form a cycle: no order can put every dependency first."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        super().__init__(f"tool dependency cycle: {' -> '.join(cycle)}; remove one of these "
                         "`requires` entries")
        self.cycle = cycle


class MissingParameterError(UsageError):
    """A tool's constructor needs a value the run context, the runtime and ``deps`` lack."""

    def __init__(self, tool: str, parameter: str, detail: str) -> None:
        super().__init__(f"tool {tool!r} cannot be constructed: parameter {parameter!r} "
                         f"{detail}")
        self.tool = tool
        self.parameter = parameter


def config_error(exc: Any, *, prefix: str = "", field: str | None = None) -> ConfigError:
    """The first problem of a pydantic ``ValidationError`` as a ConfigError naming its field
    (``prefix`` + the field's path: ``AGENTRT_MAX_TOKENS``; or under ``field``: a config
    file's ``tools.files.methods``) and the value it got."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if prefix:
        where = prefix + where.replace(".", "_").upper()
    elif field:
        where = f"{field}.{where}" if where else field
    got = f" (got {first['input']!r:.200})" if first["type"] != "missing" else ""
    return ConfigError(f"{first['msg']}{got}", field=where or None)


class TargetError(UsageError):
    """A CLI target (``pkg.mod:Class`` or ``file.py:Class``) cannot be loaded."""


class ToolError(Exception):
    """Raise inside a tool function to send the model this message as an error result.

    A control-flow signal, not a failure of the runtime: the run goes on and the
    model reads ``str(exc)`` in a ``tool_result`` with ``is_error: true``.
    """
