"""Load: 200 concurrent runs (5 turns, 3 tool calls a turn, 20 ms model latency) in this
process, against the fake Messages API in another: every run finishes with the right
answer, every side effect runs once, and peak memory and event-loop lag are printed.
`make load` runs the 500 the README's figures are for; the 10-minute soak is `make soak`
(neither run by CI)."""

from __future__ import annotations

import json
import sys

import pytest

from agentrt import configure_logging

from .load import load

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.mark.timeout(180)  # waits on the fake API's process
async def test_two_hundred_concurrent_runs() -> None:
    configure_logging("warning", "json", sys.stderr)  # restored by the conftest fixture
    report = await load(runs=200, turns=5, calls=3, latency=0.02)
    sys.stdout.write(f"\nload: {json.dumps(report)}\n")
    # load() checked every answer and side effect; these bounds only catch a runtime that
    # blocks its event loop for good or leaks, not a slow machine: the figures are the point
    assert report["peak_rss_mb"] < 1024
    assert report["loop_lag_ms"]["max"] < 10_000
    assert report["seconds"] < 150
