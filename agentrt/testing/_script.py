"""What the fake server answers, step by step, and the replay-file format that describes it.

Steps are plain frozen data so a test reads as a transcript of the conversation it scripts;
the server alone decides how each one turns into bytes on the wire.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._pace import Pause

if TYPE_CHECKING:
    import os

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One `tool_use` block the fake model emits (`agentrt.ToolCall` is the runtime's view
    of such a call once it is validated; this is the block as scripted).

    `raw_input_json` sends exactly that text as the tool input, to test how a client copes with
    malformed arguments: streamed, it is the concatenated `input_json_delta` text; non-streaming,
    `input` is the parsed value when the text is valid JSON (even if not an object) and otherwise
    the text itself as a string, since a JSON response body cannot carry broken JSON.
    """

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    raw_input_json: str | None = None


ToolCall = ToolUse
"""`ToolUse`'s first name, kept so existing scripts keep working; new code writes `ToolUse`
(`agentrt.ToolCall` is another thing: the runtime's validated call)."""


@dataclass(frozen=True, slots=True)
class ToolSearch:
    """One server-side tool search the fake model runs with the request's tool search tool.

    The message gets a `server_tool_use` block (`id`, or a generated `srvtoolu_01...`, with
    input `{"query": query}`) and the `tool_search_tool_result` the fake computes over the
    request's deferred tools: a Python `re.search` pattern of at most 200 characters for the
    regex tool, a BM25 query for the bm25 tool, over names, descriptions, argument names and
    argument descriptions; at most 5 references, best first. A request without a tool search
    tool cannot be answered with a search: the step fails (a 500 naming the problem).
    """

    query: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An assistant message: `text`, then each of `searches` (a `server_tool_use` and its
    `tool_search_tool_result`), then `tool_calls`, as the API orders a turn that searches for
    a tool and calls it. `content` (raw blocks) overrides all three.

    `stop_reason` defaults to "tool_use" when the message holds a tool_use block, else
    "end_turn" (set "pause_turn" for a server-tool turn the client must resume);
    `output_tokens` defaults to an estimate from the content; `latency` is added to the
    server-wide latency before the first byte.

    `output` (a JSON value) is a structured-output answer: sent as the text, JSON-encoded,
    to a request with `output_config.format`, once checked against its schema (the API
    never answers outside it; see `agentrt.testing._output`). It replaces `text`.

    Pacing a streamed reply (a non-streaming request ignores it): `event_delay` seconds
    before each SSE event; `tokens_per_second` streams text and tool input a token (about
    4 characters) per delta at that rate; `pauses` hold the stream after a block's
    `content_block_stop` until the test releases them (:class:`Pause`, not in replay files).
    """

    text: str | None = None
    tool_calls: Sequence[ToolUse] = ()
    stop_reason: str | None = None
    stop_details: dict[str, Any] | None = None
    latency: float = 0.0
    output_tokens: int | None = None
    content: Sequence[dict[str, Any]] | None = None
    searches: Sequence[ToolSearch] = ()
    event_delay: float = 0.0
    tokens_per_second: float | None = None
    pauses: Sequence[Pause] = ()
    output: Any = None

    def __post_init__(self) -> None:
        if self.output is not None and (self.text is not None or self.content is not None):
            raise ValueError("output: the answer's text is its JSON; set output, or text "
                             "(a raw answer), not both")
        _not_negative(latency=self.latency, output_tokens=self.output_tokens,
                      event_delay=self.event_delay)
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError(f"tokens_per_second: must be > 0, got {self.tokens_per_second}")
        if not all(isinstance(p, Pause) for p in self.pauses):
            raise ValueError("pauses: every item must be a Pause")
        if self.content is not None and not all(isinstance(b, dict) for b in self.content):
            raise ValueError("content: every block must be an object")
        if not all(isinstance(s, ToolSearch) for s in self.searches):
            raise ValueError("searches: every item must be a ToolSearch")


@dataclass(frozen=True, slots=True)
class Fault:
    """An HTTP error reply in the API's error JSON; `error_type` is derived from `status`.

    `retry_after_ms` sets `retry-after-ms` and `retry-after`: keep it small, SDK 2.x waits as long
    as it is told. `should_retry` sets `x-should-retry`, which overrides the SDK's own policy.
    """

    status: int
    message: str | None = None
    error_type: str | None = None
    retry_after_ms: int | None = None
    should_retry: bool | None = None
    latency: float = 0.0

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"status: expected an HTTP error status (400-599), got {self.status}")
        _not_negative(latency=self.latency, retry_after_ms=self.retry_after_ms)


@dataclass(frozen=True, slots=True)
class CutStream:
    """Send the first `after_events` SSE events of `reply`, then drop the connection.

    No terminating chunk and no `message_stop` follow, as when a proxy or the network dies
    mid-answer. The SDK does not retry it, from `client.messages.stream(...)` or from
    iterating `create(stream=True)`: anthropic 2.14-2.16 raise `httpx2.RemoteProtocolError`
    ("peer closed connection without sending complete message body: incomplete chunked
    read") unwrapped, 2.17 wraps it in `anthropic.APIConnectionError`. The runtime
    translates either into its own StreamInterruptedError.

    On a non-streaming request the connection is dropped before any response: the SDK sees a
    connection error and retries it (on the next step) unless `max_retries=0`, when it raises
    `anthropic.APIConnectionError`.
    """

    reply: Reply
    after_events: int

    def __post_init__(self) -> None:
        _not_negative(after_events=self.after_events)


@dataclass(frozen=True, slots=True)
class StreamError:
    """Send the first `after_events` SSE events of `reply`, then an `event: error` frame.

    The SDK raises an `APIStatusError` whose `status_code` is 200 (the HTTP status) and whose
    `type` is `error_type`; it does not retry. A non-streaming request gets the equivalent HTTP
    error instead (529 for overloaded_error).
    """

    reply: Reply
    after_events: int
    error_type: str = "overloaded_error"
    message: str = "Overloaded"

    def __post_init__(self) -> None:
        _not_negative(after_events=self.after_events)


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """Send the first `after_events` SSE events of `reply`, then one frame of `event_name` whose
    `data` line is `data` verbatim (broken JSON by default), then the rest of the events.

    As when a proxy or a buggy server garbles one frame. The anthropic 2.14 SDK fails on it while
    decoding (a `ValueError` from `json.loads`, not an API error), so it is neither retried nor
    translated by the SDK. A non-streaming request gets the reply's JSON body unharmed.
    """

    reply: Reply
    after_events: int
    data: str = '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_de'
    event_name: str = "content_block_delta"

    def __post_init__(self) -> None:
        _not_negative(after_events=self.after_events)
        if "\n" in self.data or "\r" in self.data or "\n" in self.event_name:
            raise ValueError("data and event_name: one line each (no line breaks)")


def _not_negative(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and value < 0:
            raise ValueError(f"{name}: must be >= 0, got {value}")


Step = Reply | Fault | CutStream | StreamError | MalformedEvent
_STEP_TYPES = (Reply, Fault, CutStream, StreamError, MalformedEvent)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the server (or a `ScriptedModel`) saw it. `received_at` is on the
    `time.monotonic()` clock; a model double records no headers."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]
    stream: bool
    received_at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation sent, oldest first (`body["messages"]`)."""
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tool definitions sent (`body["tools"]`, empty when there were none)."""
        tools = self.body.get("tools")
        return tools if isinstance(tools, list) else []

    @property
    def system(self) -> str:
        """The system prompt's text (its blocks joined), "" without one."""
        system = self.body.get("system")
        if isinstance(system, list):
            return "".join(b.get("text", "") for b in system if isinstance(b, dict))
        return system if isinstance(system, str) else ""


Responder = Callable[[RecordedRequest], Step | Awaitable[Step]]


class Script:
    """The steps consumed one per `POST /v1/messages` (count_tokens consumes none).

    Built from a list of steps, or from a responder function of the request for replies that
    depend on what the client sent. A list runs out (`remaining` reaches 0); a responder never does.
    """

    def __init__(self, steps: Sequence[Step] | Responder) -> None:
        self._responder: Responder | None = None
        self._steps: list[Step] = []
        if callable(steps):
            self._responder = steps
        else:
            for index, step in enumerate(steps):
                if not isinstance(step, _STEP_TYPES):
                    raise TypeError(f"steps[{index}]: expected a Step, got {type(step).__name__}")
            self._steps = list(steps)
        self._consumed = 0

    @property
    def consumed(self) -> int:
        return self._consumed

    @property
    def remaining(self) -> int | float:
        """Steps left: `math.inf` for a responder."""
        if self._responder is not None:
            return math.inf
        return len(self._steps) - self._consumed

    async def next_step(self, request: RecordedRequest) -> Step | None:
        """The step answering `request`, or None once a list of steps is exhausted."""
        if self._responder is None:
            if self._consumed >= len(self._steps):
                return None
            self._consumed += 1
            return self._steps[self._consumed - 1]
        self._consumed += 1
        result = self._responder(request)
        step = await result if inspect.isawaitable(result) else result
        if not isinstance(step, _STEP_TYPES):
            raise TypeError(f"responder returned {type(step).__name__}, expected a Step")
        return step

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Script:
        """Read a replay file: JSON ``{"replies": [...]}``, or a Python file (an example)
        assigning the same list to ``REPLIES``, read without running it. Sync on purpose,
        it is called once at start-up."""
        file = Path(path)
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".py":
            return cls(parse_replies(_replies_in_source(text, file)))
        return cls.from_json(json.loads(text))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Script:
        """Build from `{"replies": [...]}`; a malformed entry raises ValueError naming its path."""
        replies = data.get("replies") if isinstance(data, Mapping) else None
        if not isinstance(replies, list) or set(data) != {"replies"}:
            raise ValueError('expected an object {"replies": [...]} and nothing else')
        return cls(parse_replies(replies))


def parse_replies(replies: Sequence[Any]) -> list[Step]:
    """Replay-file entries as steps; a malformed entry raises ValueError naming its index."""
    return [_step(entry, f"replies[{i}]") for i, entry in enumerate(replies)]


def _replies_in_source(text: str, file: Path) -> list[Any]:
    """The literal assigned to ``REPLIES`` at the top level of a Python file."""
    import ast

    for node in ast.parse(text, filename=str(file)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, assigned = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, assigned = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "REPLIES":
            try:
                value = ast.literal_eval(assigned)
            except ValueError as exc:
                raise ValueError(f"REPLIES is not a literal list: {exc}") from exc
            if isinstance(value, list):
                return value
    raise ValueError(f"{file} assigns no REPLIES = [...] list")


# What JSON may hold for a field, by the head of its annotation ("str | None" -> str).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    **{"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)},
    **{"dict": (dict,), "Reply": (dict,), "Sequence": (list,)},
    "Any": (dict, list, str, int, float, bool),
}
_KINDS: dict[str, type[Step]] = {
    "fault": Fault,
    "cut_stream": CutStream,
    "stream_error": StreamError,
    "malformed_event": MalformedEvent,
}


def _step(entry: object, path: str) -> Step:
    if isinstance(entry, Mapping) and len(entry) == 1 and (kind := next(iter(entry))) in _KINDS:
        return _build(_KINDS[kind], entry[kind], f"{path}.{kind}")
    return _build(Reply, entry, path)


def _build(cls: type[_T], entry: object, path: str) -> _T:
    """One step type from its JSON object, checked against the dataclass's own fields."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{path}: expected an object, got {type(entry).__name__}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in entry:
        if key not in known:
            raise ValueError(f"{path}: unknown key {key!r} (expected one of {sorted(known)})")
    kwargs: dict[str, Any] = {}
    for name, spec in known.items():
        optional = spec.default is not MISSING or spec.default_factory is not MISSING
        if name not in entry:
            if not optional:
                raise ValueError(f"{path}: {name!r} is required")
            continue
        value: Any = entry[name]
        types = _JSON_TYPES[str(spec.type).split("[")[0].split(" ")[0]]
        if value is None and spec.default is None:
            continue
        # bool is an int to Python, but `"latency": true` is a typo, not a number.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{path}.{name}: expected {expected}, got {type(value).__name__}")
        if name == "tool_calls":
            calls = enumerate(entry[name])
            value = tuple(_build(ToolUse, c, f"{path}.{name}[{i}]") for i, c in calls)
        elif name == "pauses":
            raise ValueError(f"{path}.pauses: a Pause is released by a test; it cannot be "
                             "scripted in a file")
        elif name == "searches":
            searches = enumerate(entry[name])
            value = tuple(_build(ToolSearch, c, f"{path}.{name}[{i}]") for i, c in searches)
        elif name == "reply":
            value = _build(Reply, value, f"{path}.reply")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
