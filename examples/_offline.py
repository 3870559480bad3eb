"""What every example shares: the real API when there is a key, else scripted replies.

With ``ANTHROPIC_API_KEY`` set, an example talks to the real Messages API. Without
it, ``agentrt.testing``'s fake Messages API server answers (over real HTTP, through
the real SDK) from the example's ``<name>.replay.json``, so it runs from a fresh
clone with no account.

The scripted replies are indexed by the conversation, not consumed in order: the
request whose thread already holds ``n`` assistant messages gets reply ``n``. So a
thread resumed by another process, or many threads served at once (the service
example), each get the reply that fits where they are.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from agentrt import (
    RunFinished,
    RunResult,
    Runtime,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    configure_logging,
    load_settings,
)
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, Script, Step

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from agentrt import Agent, Settings

__all__ = ["has_api_key", "open_runtime", "scripted", "show_run", "upstream_calls"]

_OUT_OF_REPLIES = Reply(text="(The scripted replies of this offline example end here. Set "
                             "ANTHROPIC_API_KEY to talk to a real model.)")


# What each pipeline stage's name means, for people reading the run.
_ANSWERED_BY = {
    "executed": "ran the tool",
    "turn_dedup": "from turn_dedup (the same call earlier in this message)",
    "memo": "from memo (the same call earlier in this thread)",
    "local_cache": "from local_cache (this process's cache)",
    "shared_cache": "from shared_cache (the Redis cache: another process's result)",
    "single_flight": "from single_flight (joined the same call running in this process)",
    "shared_flight": "from shared_flight (joined the same call running in another process)",
    "batch": "from batch (one upstream request for the batch)",
}


def has_api_key() -> bool:
    return any(os.environ.get(name) for name in
               ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"))


def scripted(replay: Path) -> Script:
    """The replay file's replies, reply ``n`` for a thread holding ``n`` assistant messages."""
    replies: list[Any] = json.loads(replay.read_text(encoding="utf-8"))["replies"]
    Script.from_json({"replies": replies})  # a malformed file fails now, naming the entry

    async def answer(request: RecordedRequest) -> Step:
        n = sum(1 for m in request.body.get("messages", []) if m.get("role") == "assistant")
        if n >= len(replies):
            return _OUT_OF_REPLIES
        step = await Script.from_json({"replies": [replies[n]]}).next_step(request)
        assert step is not None
        return step

    return Script(answer)


@asynccontextmanager
async def open_runtime(replay: Path, settings: Settings | None = None, *,
                       tracer_provider: Any = None, meter_provider: Any = None,
                       **overrides: Any) -> AsyncIterator[Runtime]:
    """One Runtime for the example: on the real API with a key, else on a fake server.
    ``tracer_provider`` / ``meter_provider``: OpenTelemetry's, as Runtime takes them."""
    configure_logging(level="warning", stream=sys.stderr)
    async with AsyncExitStack() as stack:
        client = None
        if not has_api_key():
            server = await stack.enter_async_context(FakeAnthropicServer(scripted(replay)))
            client = await stack.enter_async_context(server.client())
        runtime = Runtime(settings or load_settings(**overrides), client=client,
                          tracer_provider=tracer_provider, meter_provider=meter_provider)
        yield await stack.enter_async_context(runtime)


def _first_line(text: str, width: int = 150) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


async def show_run(agent: Agent, task: str, *, thread_id: str | None = None,
                   quiet: bool = False) -> RunResult:
    """Runs ``task``, printing the model's text and one line per tool call as they come,
    each finished call with the stage that answered it; returns the result."""
    at_line_start = True

    def line(text: str) -> None:
        nonlocal at_line_start
        if not quiet:
            print(("" if at_line_start else "\n") + text, flush=True)
        at_line_start = True

    if not quiet:
        print(f"you> {task}", flush=True)
    async for event in agent.stream(task, thread_id=thread_id):
        if isinstance(event, TextDelta) and not quiet:
            print(event.text, end="", flush=True)
            at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            args = ", ".join(f"{k}={v!r}" for k, v in event.input.items())
            line(f"  -> {event.name}({args})")
        elif isinstance(event, ToolCallFinished):
            if event.is_error:
                line(f"  <- {event.name}: error: {_first_line(event.content)}")
            elif event.name == "initialize_tools":  # the activation report, not the guides
                status = event.content.split("\n\n", 1)[0].strip().replace("\n", "\n       ")
                line(f"  <- {event.name}: {status}")
            else:
                line(f"  <- {event.name}: {_ANSWERED_BY.get(event.source, event.source)}")
        elif isinstance(event, RunFinished):
            result = event.result
            stats = result.stats
            hits = ", ".join(f"{k} {v}" for k, v in sorted(stats.hits.items())) or "none"
            line(f"   [tool calls {stats.tool_calls}, executed {stats.executed}, "
                 f"errors {stats.errors}, answered by the pipeline: {hits}]")
            return result
    raise RuntimeError("the run ended without a result")


def upstream_calls(agent: Agent, tool: str) -> list[str]:
    """The upstream requests an example tool recorded (its ``upstream`` list)."""
    instance = agent.registry.tool(tool)
    found: list[str] = getattr(instance, "upstream", [])
    return found
