"""examples/mcp_git.py: a real mcp-server-git, started by the example, ended with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .support import offline_env, run_example, stats_lines

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_mcp_git_dedups_reads_and_a_commit_makes_them_run_again(tmp_path: Path) -> None:
    pytest.importorskip("mcp")
    out = run_example("mcp_git", env=offline_env(tmp_path)).stdout
    assert stats_lines(out) == [{"tool_calls": 7, "executed": 5, "errors": 0,
                                 "hits": {"memo": 1, "turn_dedup": 1}}]
    assert "  <- git_status: from turn_dedup (the same call earlier in this message)" in out
    assert "  <- git_log: from memo (the same call earlier in this thread)" in out
    assert out.endswith("7 tool calls, 5 ran on the git server, answered by the pipeline: "
                        "memo 1, turn_dedup 1\n")
