"""Durable runs on Temporal (``pip install 'agentrt[temporal]'``).

A run of any :class:`~agentrt.Agent` executes as a Temporal workflow: the loop's
decisions in the workflow, every model request, tool call and thread-store write in
an activity, so a run survives its worker's death and continues on another machine.
Clients use :class:`TemporalRuntime` where a ``Runtime`` is; workers run
``agentrt worker TARGET --temporal ADDRESS --task-queue NAME`` (or :func:`run_worker`).
See docs/concepts/temporal.md.
"""

from ._runtime import TemporalRuntime
from ._types import Options
from ._worker import WORKER_LEASE_TTL, build_worker, run_worker, worker_settings

__all__ = ["WORKER_LEASE_TTL", "Options", "TemporalRuntime", "build_worker", "run_worker",
           "worker_settings"]
