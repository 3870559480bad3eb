"""Test doubles for agentrt: a fake Anthropic Messages API served over real HTTP, and
in-process models for unit tests of the loop.

Point the real `anthropic.AsyncAnthropic` at `FakeAnthropicServer.base_url` (or use
`server.client()`), script its replies with `Reply` (its tool calls are `ToolUse`), `Fault`,
`CutStream`, `StreamError` and `MalformedEvent`, pace a stream (`Reply(event_delay=...,
tokens_per_second=..., pauses=[Pause(after_block=0)])`), and assert on `server.requests`.
`python -m agentrt.testing --replay FILE` runs it standalone. The server keeps the API's
rules for deferred tools (`defer_loading`, `tool_reference`) and emulates its server-side
tool search (`Reply(searches=[ToolSearch(...)])`). Given
`context_windows={"model": tokens}` (server and model doubles alike) a longer prompt gets
the API's 400 `prompt is too long`; the API's context editing and compaction
(`context_management`) are emulated, and `answering_summaries(responder)` answers the
summary requests of `agentrt.context`.

`Runtime(model=ScriptedModel(steps))` answers with the same steps without HTTP or the SDK's
request path, and `FunctionModel(fn)` with `fn(request)`: the loop's unit tests use them,
the SDK path's integration tests use the server.

`runtime_or_replay(REPLIES)` is the examples' switch: a Runtime on the real API when an API
key is set, else on the fake server answering with their scripted replies; `show_run` prints
a run as they show it.
"""

from ._context import answering_summaries
from ._logs import capture_events
from ._model import FunctionModel, ScriptedModel
from ._pace import Pause
from ._replay import has_api_key, replies_by_turn, runtime_or_replay
from ._script import (
    CutStream,
    Fault,
    MalformedEvent,
    RecordedRequest,
    Reply,
    Responder,
    Script,
    Step,
    StreamError,
    ToolCall,
    ToolSearch,
    ToolUse,
)
from ._server import FakeAnthropicServer
from ._show import show_run

__all__ = [
    "CutStream",
    "FakeAnthropicServer",
    "Fault",
    "FunctionModel",
    "MalformedEvent",
    "Pause",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Script",
    "ScriptedModel",
    "Step",
    "StreamError",
    "ToolCall",
    "ToolSearch",
    "ToolUse",
    "answering_summaries",
    "capture_events",
    "has_api_key",
    "replies_by_turn",
    "runtime_or_replay",
    "show_run",
]
