"""The worker process of durable runs: ``agentrt worker TARGET... --temporal ADDRESS
--task-queue NAME``, or :func:`run_worker` in code.

A worker runs the workflow (the loop's decisions) and the activities (model
requests, tool calls, store writes) of the agents it is given, on one task queue;
run as many as you like, on as many machines: a run whose worker dies continues on
another. Every worker of a queue must have the same agents and the same thread store
(SQLite on one machine, Redis for several), and, for streaming, the same Redis.
"""

from __future__ import annotations

import signal
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from .._errors import ConfigError, UsageError
from ..log import get_logger
from ..runtime import Runtime
from ..settings import load_settings
from ._activities import Activities
from ._stream import EventSink
from ._workflow import AgentRunWorkflow

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ..agent import Agent
    from ..settings import Settings

__all__ = ["WORKER_LEASE_TTL", "build_worker", "run_worker", "worker_command", "worker_settings"]

log = get_logger("agentrt.temporal")


# A worker's cross-process single-flight lease, unless set: no longer than the default
# heartbeat timeout, so that a read-only call retried after its worker died does not
# wait out the dead worker's lease (10 s by default) behind the heartbeat timeout.
WORKER_LEASE_TTL = 5.0


def worker_settings(settings: Settings | None) -> Settings:
    """The settings a worker runs with: ``settings`` (else the environment's), with
    ``lease_ttl`` at :data:`WORKER_LEASE_TTL` unless it was set."""
    settings = settings or load_settings()
    if "lease_ttl" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"lease_ttl": WORKER_LEASE_TTL})


def build_worker(client: Client, task_queue: str, agents: Sequence[Agent], *,
                 sink: EventSink | None = None, max_concurrent_activities: int = 100) -> Worker:
    """A Temporal worker for ``agents`` (each by its ``name``; names must differ)."""
    by_name: dict[str, Agent] = {}
    for agent in agents:
        if agent.name in by_name:
            raise ConfigError(f"two agents named {agent.name!r}: a run names its agent by "
                              "class name", field="agents")
        by_name[agent.name] = agent
    activities = Activities(by_name, sink)
    return Worker(
        client, task_queue=task_queue, workflows=[AgentRunWorkflow],
        activities=activities.all(), max_concurrent_activities=max_concurrent_activities,
        # a run's workflow tasks go to the worker that ran its last one (its cache); if
        # that worker died, they move to any worker after this (the SDK's default, 10 s,
        # would add as much to every recovery; the workflow's history is small to replay)
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        # the workflow module imports only the payload types; agentrt's modules are
        # passed through (imported once, not per workflow run)
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("agentrt")))


async def run_worker(agent_classes: Sequence[type[Agent]], *, client: Client, task_queue: str,
                     settings: Settings | None = None, runtime: Runtime | None = None,
                     stop: anyio.Event | None = None) -> None:
    """Run a worker for these agents until ``stop`` is set (or forever): one runtime
    (store, model client, Redis) shared by them: ``runtime`` (entered, the caller's),
    else one made from ``settings``."""
    async with AsyncExitStack() as stack:
        if runtime is None:
            runtime = await stack.enter_async_context(Runtime(worker_settings(settings)))
        agents = [cls(runtime) for cls in agent_classes]
        for agent in agents:
            stack.push_async_callback(agent.aclose)
        url = runtime.settings.redis_url
        sink = None
        if url is not None:
            sink = EventSink(url.get_secret_value())
            stack.push_async_callback(sink.aclose)
        worker = build_worker(client, task_queue, agents, sink=sink)
        log.info("temporal.worker_started", task_queue=task_queue,
                 agents=[a.name for a in agents])
        async with worker:
            if stop is None:
                await anyio.sleep_forever()
            else:
                await stop.wait()
        log.info("temporal.worker_stopped", task_queue=task_queue)


async def worker_command(args: argparse.Namespace, settings: Settings) -> int:
    """``agentrt worker``: connects, runs until SIGTERM or SIGINT (then finishes the
    activities it runs, within Temporal's graceful shutdown)."""
    from .._target import load_agent_class

    classes = [load_agent_class(target) for target in args.targets]
    if not args.task_queue:
        raise UsageError("--task-queue NAME: the queue the clients' TemporalRuntime uses")
    try:
        client = await Client.connect(args.temporal, namespace=args.namespace)
    except RuntimeError as exc:
        raise UsageError(f"--temporal {args.temporal}: cannot connect ({exc}); is the "
                         "server up? (temporal server start-dev)") from exc
    stop = anyio.Event()

    async def on_signals() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                stop.set()
                return

    async with anyio.create_task_group() as group:
        group.start_soon(on_signals)
        await run_worker(classes, client=client, task_queue=args.task_queue,
                         settings=settings, stop=stop)
        group.cancel_scope.cancel()
    return 0


