from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

import agentrt.testing
from agentrt.testing import (
    CutStream,
    Fault,
    RecordedRequest,
    Reply,
    Script,
    StreamError,
    ToolUse,
)

if TYPE_CHECKING:
    from pathlib import Path

EXAMPLE = {
    "replies": [
        {
            "text": "Let me look.",
            "tool_calls": [{"name": "get_product", "input": {"product_id": 42}}],
            "latency": 0.01,
        },
        {"fault": {"status": 529, "should_retry": True}},
        {"cut_stream": {"after_events": 3, "reply": {"text": "..."}}},
        {
            "stream_error": {
                "after_events": 2,
                "reply": {"text": "..."},
                "error_type": "overloaded_error",
            }
        },
        {"text": "Product 42 costs $9.99.", "stop_reason": "end_turn"},
    ]
}


def test_exports_match_all() -> None:
    public = {name for name in dir(agentrt.testing) if not name.startswith("_")}
    assert set(agentrt.testing.__all__) == public


@pytest.mark.anyio
async def test_from_json_builds_every_step_kind() -> None:
    script = Script.from_json(EXAMPLE)
    assert script.remaining == 5
    request = RecordedRequest("POST", "/v1/messages", {}, {}, stream=False, received_at=0.0)
    steps = [await script.next_step(request) for _ in range(6)]
    assert (script.consumed, script.remaining) == (5, 0)
    assert steps == [
        Reply(
            text="Let me look.",
            tool_calls=(ToolUse("get_product", {"product_id": 42}),),
            latency=0.01,
        ),
        Fault(529, should_retry=True),
        CutStream(Reply(text="..."), after_events=3),
        StreamError(Reply(text="..."), after_events=2, error_type="overloaded_error"),
        Reply(text="Product 42 costs $9.99.", stop_reason="end_turn"),
        None,
    ]


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "replay.json"
    path.write_text(json.dumps(EXAMPLE))
    assert Script.load(path).remaining == 5


def test_load_reads_the_replies_of_a_python_file_without_running_it(tmp_path: Path) -> None:
    example = tmp_path / "example.py"
    example.write_text('raise SystemExit("never run")\n'
                       f'REPLIES: list = {EXAMPLE["replies"]!r}\n')
    assert Script.load(example).remaining == 5
    example.write_text("REPLIES = make_them()\n")
    with pytest.raises(ValueError, match="REPLIES is not a literal list"):
        Script.load(example)
    example.write_text("OTHER = []\n")
    with pytest.raises(ValueError, match=r"assigns no REPLIES = \[...\] list"):
        Script.load(example)


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        ([{"text": "a"}, {"text": "b"}, {"tool_calls": [{"input": {}}]}],
         "replies[2].tool_calls[0]: 'name' is required"),
        ([{"txt": "typo"}], "replies[0]: unknown key 'txt'"),
        ([{"text": 42}], "replies[0].text: expected str, got int"),
        ([{"latency": True}], "replies[0].latency: expected int or float, got bool"),
        ([{"latency": -1}], "replies[0]: latency: must be >= 0, got -1"),
        ([{"fault": {"status": 200}}], "replies[0].fault: status: expected an HTTP error status"),
        ([{"fault": {}}], "replies[0].fault: 'status' is required"),
        ([{"cut_stream": {"reply": {}}}], "replies[0].cut_stream: 'after_events' is required"),
        ([{"stream_error": {"after_events": 1, "reply": {"tool_calls": [1]}}}],
         "replies[0].stream_error.reply.tool_calls[0]: expected an object, got int"),
        ([{"content": ["text"]}], "replies[0]: content: every block must be an object"),
        (["hello"], "replies[0]: expected an object, got str"),
    ],
)  # fmt: skip
def test_from_json_names_the_bad_entry(replies: list[Any], error: str) -> None:
    with pytest.raises(ValueError) as info:
        Script.from_json({"replies": replies})
    assert str(info.value).startswith(error)


@pytest.mark.parametrize("data", [{}, {"replies": {}}, {"replies": [], "extra": 1}])
def test_from_json_rejects_a_bad_root(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="replies"):
        Script.from_json(data)


def test_script_rejects_what_is_not_a_step() -> None:
    with pytest.raises(TypeError, match=r"steps\[1\]: expected a Step, got str"):
        Script([Reply(text="a"), "b"])  # type: ignore[list-item]
