"""Test doubles for agentrt: a fake Anthropic Messages API served over real HTTP.

Point the real `anthropic.AsyncAnthropic` at `FakeAnthropicServer.base_url` (or use
`server.client()`), script its replies with `Reply`, `Fault`, `CutStream`, `StreamError` and
`MalformedEvent`, and assert on `server.requests`. `python -m agentrt.testing --replay FILE`
runs it standalone. The server keeps the API's rules for deferred tools (`defer_loading`,
`tool_reference`) and emulates its server-side tool search (`Reply(searches=[ToolSearch(...)])`).
"""

from ._logs import capture_events
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
)
from ._server import FakeAnthropicServer

__all__ = [
    "CutStream",
    "FakeAnthropicServer",
    "Fault",
    "MalformedEvent",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Script",
    "Step",
    "StreamError",
    "ToolCall",
    "ToolSearch",
    "capture_events",
]
