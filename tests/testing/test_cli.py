from __future__ import annotations

import json
import os
import signal
import sys
from typing import TYPE_CHECKING

import anthropic
import anyio
import processes
import pytest

from agentrt.testing.__main__ import main

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.abc import Process

REPLAY = {"replies": [{"text": "Product 42 costs $9.99.", "latency": 0.01}]}


async def _ready_line(process: Process) -> str:
    assert process.stdout is not None
    output = b""
    with anyio.fail_after(20):
        while not output.endswith(b"\n"):
            output += await process.stdout.receive()
    return output.decode()


@pytest.mark.anyio
@pytest.mark.integration
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_standalone_process_serves_and_stops_on_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(REPLAY))
    command = [sys.executable, "-m", "agentrt.testing", "--replay", str(replay)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    async with processes.opened(command, env=env) as process:
        line = await _ready_line(process)
        assert line.startswith("AGENTRT_FAKE_BASE_URL=http://127.0.0.1:")
        base_url = line.strip().split("=", 1)[1]
        async with anthropic.AsyncAnthropic(base_url=base_url, api_key="k") as client:
            message = await client.messages.create(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "price?"}]
            )
        assert message.content[0].text == "Product 42 costs $9.99."  # type: ignore[union-attr]
        process.send_signal(stop)
        with anyio.fail_after(20):
            assert await process.wait() == 0
        assert process.stdout is not None
        assert [chunk async for chunk in process.stdout] == []  # the ready line was all


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "Expecting property name"),
        ('{"replies": [{"tool_calls": [{}]}]}', "replies[0].tool_calls[0]: 'name' is required"),
        (None, "No such file"),
    ],
)
def test_bad_replay_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    replay = tmp_path / "replay.json"
    if content is not None:
        replay.write_text(content)
    assert main(["--replay", str(replay)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert problem in captured.err and str(replay) in captured.err
