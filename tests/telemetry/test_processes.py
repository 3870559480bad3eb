"""Across processes: a shared flight's follower, in another OS process, links its span to
the leader's (the leader's trace context travels with the Redis lease)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import processes
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]


async def test_a_follower_in_another_process_links_to_the_leaders_span(
        redis_gate: Any, redis_url: str) -> None:
    gate = redis_gate()
    children = [processes.popen([sys.executable, "-m", "tests.telemetry.flight_child",
                                 redis_url, gate.prefix], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    with anyio.fail_after(120):  # each child imports agentrt and the SDK
        while int(await gate.client.get(gate.key("ready")) or 0) < 2:
            for child in children:
                assert child.poll() is None, f"a child failed: {child.communicate()}"
            await anyio.sleep(0.02)
    await gate.client.set(gate.key("go"), 1)
    outputs = []
    for child in children:
        out, err = await anyio.to_thread.run_sync(child.communicate, None, 120)
        assert child.returncode == 0, err
        outputs.append(json.loads(out)["spans"])
    assert int(await gate.client.get(gate.key("executions"))) == 1

    def tool_span(spans: list[dict[str, Any]]) -> dict[str, Any]:
        (found,) = [s for s in spans if s["name"] == "execute_tool report"]
        return found

    by_source = {tool_span(s)["attributes"]["agentrt.tool.source"]: (tool_span(s), s)
                 for s in outputs}
    assert set(by_source) == {"executed", "shared_flight"}
    (leader, _), (follower, follower_spans) = by_source["executed"], by_source["shared_flight"]
    assert follower["links"] == [{"trace_id": leader["trace_id"], "span_id": leader["span_id"],
                                  "attributes": {"agentrt.link": "shared_flight"}}]
    # each process keeps its own trace; the follower's call is a child of its own run
    assert follower["trace_id"] != leader["trace_id"]
    (run,) = [s for s in follower_spans if s["name"].startswith("invoke_agent")]
    assert follower["parent"] == run["span_id"]
