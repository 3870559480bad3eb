"""TemporalRuntime: a Runtime whose agents' runs execute as Temporal workflows.

``agent.run``, ``agent.stream`` and ``agent.resume`` keep their signatures: a run
starts the thread's workflow (``agentrt-thread-<thread id>``; a second start while one
runs is refused with ``ThreadBusyError``), or decides a paused one (a workflow
update), and waits for it to stop. Events come through Redis (see ``_stream``).
The thread store is the one the workers write: this process reads it for
``threads show``, ``tools_for`` and the service, and never writes a run's messages.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from .._approvals import PendingCall
from .._errors import AgentRtError, ApprovalError, ThreadBusyError, UsageError
from .._events import ApprovalRequired, RunEvent, RunFinished
from .._result import RunResult
from ..llm._usage import Usage
from ..log import get_logger
from ..pipeline._types import RunStats
from ..runtime import Runtime
from ._stream import EventSource, event_from, stream_key
from ._types import DECIDE, WAIT, WORKFLOW, Options, RunInput, RunRef, workflow_id

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence

    from .._events import TextDelta
    from ..llm._model import ModelReply, ToolUseComplete
    from ..llm._usage import UsageLimits
    from ..settings import Settings
    from ..thread._messages import ContentBlock
    from ..thread._store import ThreadStore

__all__ = ["TemporalRuntime"]

log = get_logger("agentrt.temporal")

_BLOCK_MS = 1000  # a read of the event stream waits this long for one, then reads again


class _OnWorkers:
    """The model of a TemporalRuntime: requests are made by the workers, never here."""

    def turn(self, request: dict[str, Any], *, stream: bool, logger: Any = None
             ) -> AsyncIterator[TextDelta | ToolUseComplete | ModelReply]:
        raise UsageError("a TemporalRuntime's agents run on workers (agentrt worker): "
                         "this process makes no model request")

    async def aclose(self) -> None:
        return None


def result_from(data: Mapping[str, Any]) -> RunResult:
    stats = data.get("stats") or {}
    return RunResult(text=str(data["text"]), thread_id=str(data["thread_id"]),
                     run_id=str(data["run_id"]), stop_reason=str(data["stop_reason"]),
                     usage=Usage(**data["usage"]),
                     stats=RunStats(int(stats.get("tool_calls", 0)),
                                    int(stats.get("executed", 0)),
                                    int(stats.get("errors", 0)), dict(stats.get("hits") or {})),
                     iterations=int(data["iterations"]), limit=data.get("limit"),
                     pending=tuple(PendingCall(**p) for p in data.get("pending") or ()))


class TemporalRuntime(Runtime):
    """Use it where a :class:`~agentrt.Runtime` is::

        client = await temporalio.client.Client.connect("localhost:7233")
        async with TemporalRuntime(client=client, task_queue="agents") as runtime:
            result = await MyAgent(runtime).run("...")

    ``store`` (else the settings' thread store) must be the workers' store. Events
    stream through the settings' Redis (``AGENTRT_REDIS_URL``); without it,
    ``stream`` yields the final events only. ``options``: activity timeouts and
    retries (heartbeat timeout 5 s by default: a dead worker's call moves on after it).
    ``update_rpc_timeout``: how long one call that waits for the run's next stop (a
    workflow update) may take before it is made again, attached to the same update
    (None: the server's own deadline).
    """

    def __init__(self, settings: Settings | None = None, *, client: Client, task_queue: str,
                 store: ThreadStore | None = None, options: Options | None = None,
                 update_rpc_timeout: float | None = None) -> None:
        if not isinstance(client, Client):
            raise UsageError(f"TemporalRuntime(client=...): expected a temporalio.client.Client,"
                             f" got {type(client).__name__}")
        if not task_queue or not isinstance(task_queue, str):
            raise UsageError("TemporalRuntime(task_queue=...): the task queue the workers "
                             "poll (agentrt worker --task-queue NAME)")
        super().__init__(settings, model=_OnWorkers(), store=store)
        self.temporal = client
        self.task_queue = task_queue
        if update_rpc_timeout is not None and not update_rpc_timeout > 0:
            raise UsageError(f"TemporalRuntime(update_rpc_timeout=...): seconds > 0 or None, "
                             f"got {update_rpc_timeout!r}")
        self.options = options or Options(approval_timeout=self.settings.approval_timeout)
        self.update_rpc_timeout = (None if update_rpc_timeout is None
                                   else timedelta(seconds=update_rpc_timeout))

    def dispatch(self, agent: str, identity: Mapping[str, str],
                 task: str | list[ContentBlock] | None, *, thread_id: str | None,
                 limits: UsageLimits | None, approve: Sequence[str],
                 deny: Mapping[str, str]) -> AsyncGenerator[RunEvent, None]:
        return self._events(RunRef(agent=agent, thread_id="", run_id="",
                                   identity=dict(identity)),
                            task, thread_id, limits, list(approve), dict(deny))

    def _redis_url(self) -> str | None:
        url = self.settings.redis_url
        return None if url is None else url.get_secret_value()

    async def _events(self, agent: RunRef, task: str | list[ContentBlock] | None,
                      thread_id: str | None, limits: UsageLimits | None, approve: list[str],
                      deny: dict[str, str]) -> AsyncGenerator[RunEvent, None]:
        thread_id = thread_id or f"thread_{os.urandom(12).hex()}"
        url = self._redis_url()
        key = stream_key(self.settings.redis_prefix, workflow_id(thread_id))
        source = None if url is None else EventSource(url, key)
        finished = False
        handle: WorkflowHandle[Any, Any] | None = None
        try:
            if source is not None:
                await source.skip_to_end()
            handle, waiting = await self._start_or_decide(agent, task, thread_id, limits,
                                                          approve, deny, key if url else "")
            stop = asyncio.ensure_future(waiting)
            reader: asyncio.Future[list[dict[str, Any]]] | None = None
            try:
                while not stop.done():
                    if source is None:
                        await asyncio.wait([stop])
                        break
                    if reader is None:
                        reader = asyncio.ensure_future(source.read(_BLOCK_MS))
                    await asyncio.wait([reader, stop], return_when=asyncio.FIRST_COMPLETED)
                    if reader.done():
                        for data in reader.result():
                            event = event_from(data)
                            if event is not None:
                                yield event
                        reader = None
                if reader is not None:  # the run stopped: the rest is read at once below
                    reader.cancel()
                    await asyncio.wait([reader])
                    if not reader.cancelled():
                        for data in reader.result():
                            event = event_from(data)
                            if event is not None:
                                yield event
                    reader = None
                if source is not None:
                    for data in await source.read(None):
                        event = event_from(data)
                        if event is not None:
                            yield event
            finally:
                if reader is not None and not reader.done():
                    reader.cancel()
                if not stop.done():  # the caller left: the wait is dropped, quietly
                    stop.cancel()
                    with anyio.CancelScope(shield=True):
                        await asyncio.wait([stop])
                    if not stop.cancelled():
                        stop.exception()
            result = result_from(await self._stopped(handle, stop))
            finished = True
            if result.pending:
                yield ApprovalRequired(result.pending)
            yield RunFinished(result)
        finally:
            with anyio.CancelScope(shield=True):
                if not finished and handle is not None:
                    # the caller cancelled the run, or stopped reading: the workflow and
                    # its activities are cancelled (the thread is answered and released)
                    await self._cancel(handle)
                if source is not None:
                    await source.aclose()

    async def _cancel(self, handle: WorkflowHandle[Any, Any]) -> None:
        try:
            await handle.cancel()
        except RPCError as exc:  # done meanwhile
            log.info("temporal.cancel_skipped", workflow_id=handle.id, error=str(exc))

    async def _start_or_decide(self, agent: RunRef, task: str | list[ContentBlock] | None,
                               thread_id: str, limits: UsageLimits | None,
                               approve: list[str], deny: dict[str, str], events: str,
                               ) -> tuple[WorkflowHandle[Any, Any], Any]:
        """A paused run of the thread decided (``task`` None), else a new run started;
        and the wait for its next stop."""
        wid = workflow_id(thread_id)
        if task is None:
            handle = self.temporal.get_workflow_handle(wid)
            try:
                description = await handle.describe()
                running = description.status is not None and description.status.name == "RUNNING"
            except RPCError:
                running = False
            if running:
                return handle, self._decide(handle, thread_id, approve, deny)
        ref = RunRef(agent=agent.agent, thread_id=thread_id,
                     run_id=f"run_{os.urandom(8).hex()}", identity=agent.identity, events=events)
        data = RunInput(ref=ref, user_input=task, approve=approve, deny=deny,
                        limits=None if limits is None else {
                            "input_tokens": limits.input_tokens,
                            "output_tokens": limits.output_tokens,
                            "tool_calls": limits.tool_calls},
                        options=self.options)
        try:
            handle = await self.temporal.start_workflow(
                WORKFLOW, data, id=wid, task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
        except WorkflowAlreadyStartedError:
            raise ThreadBusyError(thread_id, 0.0) from None
        log.info("temporal.run_started", thread_id=thread_id, run_id=ref.run_id,
                 agent=agent.agent, workflow_id=wid)
        return handle, self._update(handle, WAIT, 0)

    async def _update(self, handle: WorkflowHandle[Any, Any], name: str,
                      *args: Any) -> dict[str, Any]:
        """The update's result. A call whose RPC deadline passes (the server's, when loaded
        workers have not taken the update in time, or ``update_rpc_timeout``) is made
        again with the same update id, which the server attaches to the same update: the
        run goes on, and a decision is not sent twice."""
        update_id = f"{name}-{os.urandom(8).hex()}"
        while True:
            try:
                result: dict[str, Any] = await handle.execute_update(
                    name, args=list(args), id=update_id, result_type=dict,
                    rpc_timeout=self.update_rpc_timeout)
                return result
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # ours: the caller left
                    raise
                log.info("temporal.update_retried", workflow_id=handle.id, update=name)

    async def _decide(self, handle: WorkflowHandle[Any, Any], thread_id: str,
                      approve: list[str], deny: dict[str, str]) -> dict[str, Any]:
        try:
            return await self._update(handle, DECIDE, approve, deny)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == "ApprovalError":
                raise ApprovalError(thread_id, cause.message) from None
            raise

    async def _stopped(self, handle: WorkflowHandle[Any, Any],
                       stop: asyncio.Future[dict[str, Any]]) -> dict[str, Any]:
        """The stop's result; a failed run's error as agentrt's."""
        try:
            return stop.result()
        except (WorkflowUpdateFailedError, RPCError):
            pass  # the workflow ended before the update could answer: its result says why
        try:
            result: dict[str, Any] = await handle.result()
        except WorkflowFailureError as exc:
            cause: BaseException | None = exc.cause
            while cause is not None and not isinstance(cause, ApplicationError):
                cause = cause.__cause__
            message = cause.message if isinstance(cause, ApplicationError) else str(exc)
            kind = cause.type if isinstance(cause, ApplicationError) else None
            if kind == "ApprovalError":
                raise ApprovalError(handle.id.removeprefix("agentrt-thread-"),
                                    message) from exc
            raise AgentRtError(f"the durable run {handle.id} failed: "
                               f"{kind + ': ' if kind else ''}{message}") from exc
        return result
