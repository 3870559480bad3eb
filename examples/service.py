"""Service: agentrt embedded in an ASGI app (Starlette, served by uvicorn).

    POST /threads                  -> 201 {"thread_id": "thr_..."}
    POST /threads/{id}/messages    {"message": "..."} -> the run's events, as Server-Sent Events
    GET  /threads/{id}             -> the thread and its messages (JSON)
    GET  /threads/{id}/pending     -> the calls waiting for approval (JSON)
    POST /threads/{id}/approvals   {"approve": [ids], "deny": {id: reason}} -> the resumed
                                   run's result (JSON; 409 if the ids are not pending)
    GET  /healthz                  -> {"ok": true}

One Runtime serves every request: it is opened in the app's lifespan, so the
Messages API connection pool, the thread store, Redis and the pipeline's
process-wide cache and single-flight table are shared (a question one thread
asked is answered from the ``local`` cache for the next). Shutdown (Ctrl-C or
SIGTERM to uvicorn) closes it: the API client's connections, the store, Redis.
A thread runs one message at a time; a second POST while it runs gets 409.

The agent is a JIT assistant with the default tool config (configs/default.toml).
Run it (offline on the fake Messages API server unless ANTHROPIC_API_KEY is set;
``pip install agentrt[service]`` for Starlette and uvicorn)::

    python examples/service.py --port 8000
    curl -s -X POST localhost:8000/threads
    curl -N -X POST localhost:8000/threads/THREAD_ID/messages -d '{"message": "Heat pumps?"}'
    curl -s localhost:8000/threads/THREAD_ID
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agentrt import (
    Agent,
    AgentRtError,
    ApprovalError,
    ApprovalRequired,
    PartialOutput,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from agentrt.testing import runtime_or_replay

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from starlette.requests import Request

    from agentrt import Runtime, Settings

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


class Assistant(Agent):
    system = ("You are a helpful assistant. Load tools with initialize_tools, or call a "
              "function you know directly.")
    tool_config = CONFIG
    max_iterations = 8


def event_json(event: RunEvent) -> tuple[str, dict[str, Any]]:
    """An SSE event name and its JSON data for each run event."""
    if isinstance(event, TextDelta):
        return "text", {"text": event.text}
    if isinstance(event, PartialOutput):  # a typed agent's answer so far (output_type)
        return "partial_output", {"output": event.output}
    if isinstance(event, ToolCallStarted):
        return "tool_call", {"id": event.id, "name": event.name, "input": event.input}
    if isinstance(event, ToolCallFinished):
        return "tool_result", {"id": event.id, "name": event.name, "source": event.source,
                               "is_error": event.is_error,
                               "duration_ms": round(event.duration * 1000, 1)}
    if isinstance(event, TurnFinished):
        return "turn", {"iteration": event.iteration, "stop_reason": event.stop_reason}
    if isinstance(event, ApprovalRequired):
        return "approval_required", {"pending": [p.to_json() for p in event.pending]}
    assert isinstance(event, RunFinished)
    return "done", event.result.to_json()


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def create_thread(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    info = await runtime.store.create_thread()
    return JSONResponse({"thread_id": info.id}, status_code=201)


async def get_thread(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    thread_id = request.path_params["thread_id"]
    info = await runtime.store.get_thread(thread_id)
    if info is None:
        return JSONResponse({"error": f"no thread {thread_id}"}, status_code=404)
    messages = await runtime.store.messages(thread_id)
    return JSONResponse({"id": info.id, "created_at": info.created_at,
                         "updated_at": info.updated_at,
                         "messages": [m.to_json() for m in messages]})


async def post_message(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    busy: set[str] = request.state.busy
    thread_id = request.path_params["thread_id"]
    try:
        body = await request.json()
        message = body["message"]
        if not isinstance(message, str) or not message.strip():
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'send {"message": "..."}'}, status_code=400)
    if await runtime.store.get_thread(thread_id) is None:
        return JSONResponse({"error": f"no thread {thread_id}"}, status_code=404)
    if thread_id in busy:
        return JSONResponse({"error": f"thread {thread_id} is answering a message"},
                            status_code=409)
    busy.add(thread_id)
    agent: Agent = request.state.agent

    async def events() -> AsyncIterator[bytes]:
        try:
            async for event in agent.stream(message, thread_id=thread_id):
                yield sse(*event_json(event))
        except AgentRtError as exc:  # the thread keeps what was stored; tell the client
            yield sse("error", {"error": str(exc)})
        finally:
            busy.discard(thread_id)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache"})


async def get_pending(request: Request) -> Response:
    agent: Agent = request.state.agent
    thread_id = request.path_params["thread_id"]
    try:
        pending = await agent.pending(thread_id)
    except AgentRtError as exc:  # no such thread, or not this agent's
        return JSONResponse({"error": str(exc)}, status_code=404)
    return JSONResponse({"pending": [p.to_json() for p in pending]})


async def post_approvals(request: Request) -> Response:
    """Decide the thread's pending calls and run on to the end (or the next pause)."""
    agent: Agent = request.state.agent
    busy: set[str] = request.state.busy
    thread_id = request.path_params["thread_id"]
    try:
        body = await request.json()
        approve, deny = list(body.get("approve") or []), dict(body.get("deny") or {})
    except (ValueError, TypeError, AttributeError):
        return JSONResponse({"error": 'send {"approve": [ids], "deny": {id: reason}}'},
                            status_code=400)
    if thread_id in busy:
        return JSONResponse({"error": f"thread {thread_id} is answering a message"},
                            status_code=409)
    busy.add(thread_id)
    try:
        result = await agent.resume(thread_id, approve=approve, deny=deny)
    except ApprovalError as exc:
        return JSONResponse({"error": str(exc)}, status_code=409)
    except AgentRtError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    finally:
        busy.discard(thread_id)
    return JSONResponse(result.to_json())


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


def create_app(settings: Settings | None = None, *, agent: type[Agent] = Assistant,
               replies: Sequence[Mapping[str, Any]] | None = None) -> Starlette:
    """The app; ``settings`` default to the environment's (``AGENTRT_*``); ``agent`` and
    its offline ``replies`` (default: this file's ``REPLIES``) are what it serves."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with runtime_or_replay(REPLIES if replies is None else replies, settings) as runtime:
            app.state.runtime = runtime  # for tests and introspection
            print("service: runtime open", file=sys.stderr, flush=True)
            yield {"runtime": runtime, "agent": agent(runtime), "busy": set()}
        print(f"service: stopped; runtime closed (model client closed: "
              f"{runtime.model.sdk.is_closed()}, redis: "
              f"{'closed' if runtime.redis is not None else 'not used'})",
              file=sys.stderr, flush=True)

    return Starlette(lifespan=lifespan, routes=[
        Route("/healthz", healthz),
        Route("/threads", create_thread, methods=["POST"]),
        Route("/threads/{thread_id}", get_thread),
        Route("/threads/{thread_id}/messages", post_message, methods=["POST"]),
        Route("/threads/{thread_id}/pending", get_pending),
        Route("/threads/{thread_id}/approvals", post_approvals, methods=["POST"]),
    ])


app = create_app()  # `uvicorn service:app --app-dir examples`


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "Let me search for that.",
     "tool_calls": [{"name": "web_search", "input": {"query": "heat pump efficiency"}}]},
    {"text": "Heat pumps deliver 3-4 units of heat per unit of electricity (source: "
             "example.org/heat-pumps).",
     "latency": 0.3},
    {"tool_calls": [{"name": "web_search", "input": {"query": "heat pump efficiency"}}]},
    {"text": "As I found earlier: 3-4 units of heat per unit of electricity."},
]


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    # An open event stream gets 5 s to finish when the server is asked to stop.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=5)
