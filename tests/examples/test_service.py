"""service: the runtime embedded in a Starlette app, over real HTTP with an SSE client.

In process (uvicorn serving on a loopback port in the test's event loop) to look at
the app's one Runtime and at Redis's client list around shutdown; and as its own
process, started and stopped (SIGTERM) the way an operator does.
"""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import processes
import pytest
import redis
import uvicorn
from redis_support import free_port

from agentrt import load_settings

from .support import EXAMPLES, ROOT, offline_env

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType

pytestmark = pytest.mark.integration

Event = tuple[str, dict[str, Any], float]


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """examples/service.py imported as the app module (its siblings importable), offline."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    before = set(sys.modules)
    yield importlib.import_module("service")
    for name in set(sys.modules) - before:
        if name == "service" or name.startswith("jit_tools"):
            del sys.modules[name]


async def sse(client: httpx2.AsyncClient, url: str, message: str, *,
              seen: anyio.Event | None = None) -> list[Event]:
    """The stream's events as they arrive, each with the time it was read."""
    events: list[Event] = []
    async with client.stream("POST", url, json={"message": message}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: ")), time.monotonic()))
                if seen is not None and name == "tool_result":
                    seen.set()
    return events


def names(events: list[Event]) -> list[str]:
    return [name for name, _, _ in events if name != "text"]


def results(events: list[Event]) -> list[str]:
    return [data["source"] for name, data, _ in events if name == "tool_result"]


def redis_clients(url: str, client_name: str) -> int:
    with redis.Redis.from_url(url) as client:
        return sum(1 for c in client.client_list() if c.get("name") == client_name)


@pytest.mark.anyio
async def test_one_runtime_serves_every_request_and_closes_at_shutdown(
        service: ModuleType, redis_url: str) -> None:
    tag = f"agentrt-svc-{uuid.uuid4().hex[:8]}"
    settings = load_settings(redis_url=f"{redis_url}?client_name={tag}", redis_prefix=tag,
                             thread_store="memory")
    app = service.create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    base = f"http://127.0.0.1:{port}"
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            with anyio.fail_after(20):
                while not server.started:
                    await anyio.sleep(0.02)
            async with httpx2.AsyncClient(base_url=base, timeout=20) as client:
                a = (await client.post("/threads")).json()["thread_id"]
                b = (await client.post("/threads")).json()["thread_id"]

                first = await sse(client, f"/threads/{a}/messages", "How efficient are they?")
                assert names(first) == ["tool_call", "tool_result", "turn", "turn", "done"]
                assert results(first) == ["executed"]
                done = first[-1][1]
                assert done["thread_id"] == a and done["stats"]["executed"] == 1
                assert "3-4 units of heat" in done["text"]
                # streamed as it happened: the tool's result reached the client before the
                # model's next reply (scripted to take 0.3 s) was even sent
                tool_at = next(t for n, _, t in first if n == "tool_result")
                assert first[-1][2] - tool_at >= 0.25

                # another thread, same question: the process cache of the one Runtime
                seen = anyio.Event()
                outcome: dict[str, list[Event]] = {}

                async def other() -> None:
                    outcome["b"] = await sse(client, f"/threads/{b}/messages", "Same?",
                                             seen=seen)

                tg.start_soon(other)
                await seen.wait()
                busy = await client.post(f"/threads/{b}/messages", json={"message": "again"})
                assert busy.status_code == 409  # one message at a time per thread
                while "b" not in outcome:
                    await anyio.sleep(0.02)
                assert results(outcome["b"]) == ["local_cache"]

                again = await sse(client, f"/threads/{a}/messages", "Remind me?")
                assert results(again) == ["memo"]  # the thread's own memo

                history = (await client.get(f"/threads/{a}")).json()
                assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 4
                assert history["messages"][0]["content"] == "How efficient are they?"
                assert (await client.get("/threads/thr_nope")).status_code == 404
                assert (await client.post(f"/threads/{a}/messages",
                                          json={"msg": "x"})).status_code == 400
            assert redis_clients(redis_url, tag) >= 1
            server.should_exit = True
        runtime = app.state.runtime
        assert runtime.model.sdk.is_closed()
        assert redis_clients(redis_url, tag) == 0  # the pool is closed, this process lives on
    finally:
        with redis.Redis.from_url(redis_url) as client:
            for key in client.scan_iter(match=f"{tag}:*"):
                client.delete(key)


def test_the_service_process_starts_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "service.log"
    with log_path.open("w") as log:
        proc = processes.popen(
            [sys.executable, str(EXAMPLES / "service.py"), "--port", str(port)], cwd=ROOT,
            env=offline_env(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert client.get("/healthz").json() == {"ok": True}
                    break
                except httpx2.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            thread = client.post("/threads").json()["thread_id"]
            with client.stream("POST", f"/threads/{thread}/messages",
                               json={"message": "Heat pumps?"}) as response:
                lines = [line for line in response.iter_lines() if line.startswith("event: ")]
            assert lines[-1] == "event: done"
            stored = client.get(f"/threads/{thread}").json()["messages"]
            assert len(stored) == 4
        assert (tmp_path / "threads.db").exists()  # the default store: SQLite
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught (so: killed by SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "service: runtime open" in text
    assert "service: stopped; runtime closed (model client closed: True, redis: not used)" in text
    assert text.index("Shutting down") < text.index("service: stopped")
    assert "Traceback" not in text


@pytest.mark.anyio
async def test_pending_calls_and_approvals_over_http(service: ModuleType) -> None:
    """GET /threads/{id}/pending and POST /threads/{id}/approvals (issue 19), on the
    approvals example's agent: a run pauses, the client sees why, decides, the run goes
    on; a decision on what is not pending is a 409."""
    approvals = importlib.import_module("approvals")
    try:
        app = service.create_app(load_settings(thread_store="memory"),
                                 agent=approvals.SupportAgent, replies=approvals.REPLIES)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            with anyio.fail_after(20):
                while not server.started:
                    await anyio.sleep(0.02)
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                          timeout=20) as client:
                thread = (await client.post("/threads")).json()["thread_id"]
                events = await sse(client, f"/threads/{thread}/messages", "Refund both")
                assert names(events)[-2:] == ["approval_required", "done"]
                assert events[-1][1]["stop_reason"] == "approval_required"
                pending = (await client.get(f"/threads/{thread}/pending")).json()["pending"]
                assert [(p["id"], p["name"], p["input"]) for p in pending] == [
                    ("toolu_refund_a1", "refund", {"order_id": "A-1", "amount": 120.0})]
                wrong = await client.post(f"/threads/{thread}/approvals",
                                          json={"approve": ["toolu_nope"]})
                assert wrong.status_code == 409 and "not pending" in wrong.json()["error"]
                done = await client.post(f"/threads/{thread}/approvals",
                                         json={"approve": ["toolu_refund_a1"]})
                assert done.status_code == 200 and done.json()["stop_reason"] == "end_turn"
                assert (await client.get(f"/threads/{thread}/pending")).json() == {
                    "pending": []}
                again = await client.post(f"/threads/{thread}/approvals",
                                          json={"approve": ["toolu_refund_a1"]})
                assert again.status_code == 409 and "already approved" in again.json()["error"]
                assert (await client.get("/threads/thr_nope/pending")).status_code == 404
            server.should_exit = True
    finally:
        sys.modules.pop("approvals", None)
