"""A durable run's events, from the workers to the caller, through a Redis stream.

Why Redis and not Temporal: text deltas come by the dozen per second, and a workflow
update or signal per delta would write each into the workflow's history (every
event replayed, the history's size limit reached by a long reply). The activities
publish to one Redis stream per run (``XADD``, capped, expiring an hour after the
last event); the caller reads it from its start (``XREAD``), so nothing is missed
when it starts reading late. The run's result itself comes from the workflow.

One stream per thread (one run at a time per thread): a caller reads what is
published after it starts or decides the run. A model request retried on another
worker streams its text again from its start.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from .._events import TextDelta, ToolCallFinished, ToolCallStarted, TurnFinished
from ..llm._usage import Usage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._events import RunEvent

__all__ = ["EventSink", "EventSource", "event_from"]

_MAXLEN = 10_000
_TTL = 3600


def stream_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:temporal:events:{run_id}"


class EventSink:
    """The workers' side: events appended to the run's stream."""

    def __init__(self, url: str) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(url)

    async def publish(self, key: str, events: Sequence[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(key, {"e": json.dumps(event)}, maxlen=_MAXLEN, approximate=True)
        pipe.expire(key, _TTL)
        await pipe.execute()

    async def aclose(self) -> None:
        await self.client.aclose()


class EventSource:
    """The caller's side: the run's events, read from the stream's start."""

    def __init__(self, url: str, key: str) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(url)
        self.key = key
        self.last = "0-0"

    async def skip_to_end(self) -> None:
        """Read only what is published from now on (the thread's earlier runs' events
        stay behind)."""
        last: Any = await self.client.xrevrange(self.key, count=1)
        if last:
            self.last = _text(last[0][0])

    async def read(self, block_ms: int | None) -> list[dict[str, Any]]:
        """Events after the last read; waits up to ``block_ms`` for one (None: not at all)."""
        answer: Any = await self.client.xread({self.key: self.last}, count=500,
                                              block=block_ms)
        events: list[dict[str, Any]] = []
        for _, entries in answer or []:
            for entry_id, fields in entries:
                self.last = _text(entry_id)
                events.append(json.loads(fields[b"e"]))
        return events

    async def aclose(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def event_from(data: dict[str, Any]) -> RunEvent | None:
    """The ``RunEvent`` a published event stands for (None for markers)."""
    kind = data.get("type")
    if kind == "text":
        return TextDelta(str(data["text"]))
    if kind == "tool_started":
        return ToolCallStarted(str(data["id"]), str(data["name"]), dict(data["input"]))
    if kind == "tool_finished":
        return ToolCallFinished(str(data["id"]), str(data["name"]), bool(data["is_error"]),
                                str(data["source"]), str(data["content"]),
                                float(data["duration"]))
    if kind == "turn":
        return TurnFinished(int(data["iteration"]), str(data["stop_reason"]),
                            Usage(**data["usage"]))
    return None
