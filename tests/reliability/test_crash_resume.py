"""Crash and resume: runs SIGKILLed at random points, each resumed from SQLite (28 in the
suite, 4 per kill point; AGENTRT_CRASH_KILLS=50 for the 50 the reliability report ran).

Every run ships three items (a read-only stock look-up and a side-effecting shipment
per item). A child process runs it against this process's fake Messages API and
SIGKILLs itself at a point drawn at random (see crash_child.py); this process then
resumes the thread from the store and checks:

- lost messages: every message the store acknowledged to the child is still there;
- corrupted threads: the thread is whole and the API takes it back (check_thread;
  the fake server also refuses tool_use/tool_result pairs that do not match);
- duplicated side effects: each item shipped exactly once in the end (also when
  every third thread is killed a second time, in the run resuming it). A shipment
  whose result was stored is never run again; one that was in flight comes back as
  "outcome is unknown", the model checks its status and ships only if it had not
  happened. Every kill mid-tool or after the tool must produce that message.

The seed is printed; AGENTRT_CRASH_SEED=<seed> (with the same AGENTRT_CRASH_KILLS)
replays the same kills.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import processes
import pytest

from agentrt import Runtime, SQLiteThreadStore, load_settings
from agentrt.testing import FakeAnthropicServer

from .crash_child import Warehouse, WarehouseAgent, read_lines
from .support import check_thread, warehouse_model

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

HERE = Path(__file__).resolve().parent
KILLS = int(os.environ.get("AGENTRT_CRASH_KILLS") or 28)
POINTS = {  # point -> highest visit to kill at (3 items: 3 tool turns, 4 requests)
    "before_llm": 4, "mid_stream": 4, "mid_tool": 3, "after_tool": 3,
    "before_persist": 3, "after_persist": 3, "random_time": 1,
}


class Zygote:
    """The forking child process (crash_child.py): one job in, one report out."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = processes.popen([sys.executable, str(HERE / "crash_child.py")],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env, text=True)

    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = await anyio.to_thread.run_sync(self.process.stdout.readline)
        assert line, f"the zygote died: {self.process.stderr.read() if self.process.stderr else ''}"
        report: dict[str, Any] = json.loads(line)
        return report

    def close(self) -> str:
        """Closes its stdin (it exits at end of input); its stderr."""
        try:
            _, errors = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        return errors


@pytest.mark.timeout(240)  # waits on a child process per kill
async def test_kills_at_every_point_lose_nothing_and_repeat_no_side_effect(
        tmp_path: Path) -> None:
    seed = int(os.environ.get("AGENTRT_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    sys.stdout.write(f"\ncrash/resume seed: {seed}\n")
    db = str(tmp_path / "threads.db")
    points = [list(POINTS)[i % len(POINTS)] for i in range(KILLS)]
    rng.shuffle(points)
    tally: Counter[str] = Counter()
    problems: list[str] = []
    zygote = Zygote()
    try:
        async with FakeAnthropicServer(warehouse_model) as server, server.client(
                max_retries=0) as client, SQLiteThreadStore(db) as store, Runtime(
                load_settings(thread_store="memory", thread_wait=30), client=client,
                store=store) as runtime:
            for index, point in enumerate(points):
                thread = f"thr_crash_{index}"
                task = "Ship: " + ", ".join(f"item{index}-{n}" for n in range(3))
                job = {"job": index, "point": point, "occurrence": rng.randint(1, POINTS[point]),
                       "delay": rng.uniform(0.0, 0.3), "db": db, "thread": thread,
                       "task": task, "base_url": server.base_url,
                       "log": str(tmp_path / f"effects-{index}.log"),
                       "journal": str(tmp_path / f"journal-{index}.log")}
                report = await zygote.run(job)
                label = f"job {index} ({point} #{job['occurrence']})"
                if report["signal"] != 9:
                    problems.append(f"{label}: not killed: {report}")
                    continue
                tally["killed"] += 1
                tally[point] += 1
                if index % 3 == 0 and await store.get_thread(thread) is not None and (
                        await store.messages(thread)):
                    # a second crash, in the run that resumes the first one
                    again = {**job, "task": "continue", "occurrence": 1,
                             "point": rng.choice(["mid_tool", "after_tool", "before_persist"])}
                    report = await zygote.run(again)
                    tally["second_kills"] += report["signal"] == 9
                    label += f" then ({again['point']} #1)"
                await _resume_and_check(runtime, store, job, label, tally, problems)
    finally:
        errors = zygote.close()
    summary = {k: tally[k] for k in ("killed", "second_kills", "lost", "corrupted", "duplicated",
                                     "missing", "unknown_reported")}
    sys.stdout.write(f"crash/resume: {summary}; by point: "
                     f"{ {p: tally[p] for p in POINTS} }\n")
    assert not problems, "\n".join(problems) + f"\nseed {seed}\n{errors[-2000:]}"
    assert tally["killed"] == KILLS
    assert (tally["lost"], tally["corrupted"], tally["duplicated"], tally["missing"]) == (
        0, 0, 0, 0)


async def _resume_and_check(runtime: Runtime, store: SQLiteThreadStore, job: dict[str, Any],
                            label: str, tally: Counter[str], problems: list[str]) -> None:
    thread = job["thread"]
    info = await store.get_thread(thread)
    before = await store.messages(thread) if info is not None else []
    stored = {m.id for m in before}
    lost = [r["id"] for r in read_lines(job["journal"]) if r["id"] not in stored]
    if lost:
        tally["lost"] += len(lost)
        problems.append(f"{label}: acknowledged messages lost: {lost}")
    try:
        check_thread(before)
    except AssertionError as exc:
        tally["corrupted"] += 1
        problems.append(f"{label}: corrupted before the resume: {exc}")
        return
    dangling_ship = bool(before) and before[-1].role == "assistant" and any(
        b.get("name") == "ship" for b in before[-1].blocks() if b.get("type") == "tool_use")
    agent = type("WarehouseAgent", (WarehouseAgent,),
                 {"tools": (Warehouse(job["log"]),)})(runtime)
    try:
        result = await agent.run("continue" if before else job["task"], thread_id=thread)
    except Exception as exc:
        tally["corrupted"] += 1
        problems.append(f"{label}: the resume failed: {exc!r}")
        return
    after = await store.messages(thread)
    try:
        check_thread(after)
        assert after[: len(before)] == before, "stored messages changed"
        assert result.text.startswith("All shipped"), result.text
    except AssertionError as exc:
        tally["corrupted"] += 1
        problems.append(f"{label}: bad thread after the resume: {exc}")
    effects = Counter(r["item"] for r in read_lines(job["log"]) if r["phase"] == "effect")
    items = job["task"].removeprefix("Ship: ").split(", ")
    for item in items:
        if effects[item] > 1:
            tally["duplicated"] += effects[item] - 1
            problems.append(f"{label}: {item} shipped {effects[item]} times")
        elif effects[item] == 0:
            tally["missing"] += 1
            problems.append(f"{label}: {item} never shipped")
    unknown = any("outcome is unknown" in str(b.get("content"))
                  for m in after for b in m.blocks() if b.get("type") == "tool_result")
    tally["unknown_reported"] += unknown
    expected = job["point"] in ("mid_tool", "after_tool") or (
        job["point"] == "before_persist" and dangling_ship)
    if expected and not unknown:
        problems.append(f"{label}: a shipment in flight was not reported as unknown")
