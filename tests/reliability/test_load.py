"""Load: 500 concurrent runs (5 turns, 3 tool calls a turn, 20 ms model latency) in this
process, against the fake Messages API in another: every run finishes with the right
answer, every side effect runs once, and peak memory and event-loop lag are printed
(README.md has the figures). The 10-minute soak is `make soak` (not run by CI)."""

from __future__ import annotations

import json
import sys

import pytest

from agentrt import configure_logging

from .load import load

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.mark.timeout(180)
async def test_five_hundred_concurrent_runs() -> None:
    configure_logging("warning", "json", sys.stderr)  # restored by the conftest fixture
    report = await load(runs=500, turns=5, calls=3, latency=0.02)
    sys.stdout.write(f"\nload: {json.dumps(report)}\n")
    # modest bounds, for a loaded 2-CPU CI machine; the figures are the point
    assert report["peak_rss_mb"] < 1024
    assert report["loop_lag_ms"]["max"] < 3000
    assert report["seconds"] < 150
