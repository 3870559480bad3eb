"""fleet: four OS processes on one real Redis (shared cache, cross-process single-flight)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import redis
from redis_support import free_port

from .support import offline_env, run_example

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration,
              pytest.mark.timeout(150)]  # four processes; run_example waits up to 120 s

_ROW = re.compile(r"  process (\d)  pid (\d+)\s+account (\w+)\s+(\d+) tool calls, (\d+) upstream, "
                  r"answered by: (.+?)\s+([\d.]+) s")


def _hits(text: str) -> dict[str, int]:
    return {} if text == "none" else {k: int(v) for k, v in
                                      (p.rsplit(" ", 1) for p in text.split(", "))}


def test_processes_share_results_and_flights(tmp_path: Path, redis_url: str) -> None:
    out = run_example("fleet", env=offline_env(tmp_path, AGENTRT_REDIS_URL=redis_url)).stdout
    rows = {int(m[1]): {"pid": m[2], "account": m[3], "calls": int(m[4]),
                        "upstream": int(m[5]), "hits": _hits(m[6])}
            for m in _ROW.finditer(out)}
    assert sorted(rows) == [1, 2, 3, 4]
    assert len({r["pid"] for r in rows.values()}) == 4  # four OS processes
    assert rows[1] == {**rows[1], "account": "acme", "calls": 3, "upstream": 3, "hits": {}}
    # a process that never ran a call gets every result from the first one, through Redis
    assert rows[2] == {**rows[2], "account": "acme", "calls": 3, "upstream": 0,
                       "hits": {"shared_cache": 3}}
    # another tenant, two processes at once: each call runs once between them, the other
    # process joins it in flight (or, arriving after it landed, reads it from Redis)
    pair = (rows[3], rows[4])
    assert all(r["account"] == "globex" and r["calls"] == 3 for r in pair)
    assert sum(r["upstream"] for r in pair) == 3
    joined = sum(r["hits"].get("shared_flight", 0) for r in pair)
    assert joined >= 1 and joined + sum(r["hits"].get("shared_cache", 0) for r in pair) == 3
    assert out.endswith("total: 12 tool calls, 6 upstream calls (12 with the pipeline off)\n")
    prefix = re.search(r"keys under (agentrt-fleet-\w+):", out)
    assert prefix is not None
    with redis.Redis.from_url(redis_url) as client:  # the example cleans up after itself
        assert list(client.scan_iter(match=f"{prefix[1]}:*")) == []


def test_without_redis_it_says_so(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    proc = run_example("fleet", env=offline_env(tmp_path, AGENTRT_REDIS_URL=url), expect=2)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fleet: this example needs Redis, and none answers at 127.0.0.1:")
    assert lines[0].endswith("Start one (redis-server) or set AGENTRT_REDIS_URL.")
