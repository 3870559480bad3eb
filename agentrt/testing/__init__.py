"""Test doubles for agentrt: a fake Anthropic Messages API served over real HTTP.

Point the real `anthropic.AsyncAnthropic` at `FakeAnthropicServer.base_url` (or use
`server.client()`), script its replies with `Reply`, `Fault`, `CutStream` and `StreamError`,
and assert on `server.requests`. `python -m agentrt.testing --replay FILE` runs it standalone.
"""

from ._script import (
    CutStream,
    Fault,
    RecordedRequest,
    Reply,
    Responder,
    Script,
    Step,
    StreamError,
    ToolCall,
)
from ._server import FakeAnthropicServer

__all__ = [
    "CutStream",
    "FakeAnthropicServer",
    "Fault",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Script",
    "Step",
    "StreamError",
    "ToolCall",
]
