"""MCP: a real git server's tools, whose annotations drive the pipeline.

``mcp-server-git`` (from the package index: ``pip install 'agentrt[mcp]' mcp-server-git``)
runs as a child process, started by the first call of one of its tools. Its read-only
tools (``readOnlyHint``: git_status, git_log, git_diff...) are deduplicated, memoized and
cached; its writes (git_add, git_commit) run every time and invalidate the server's
cached reads. The scripted model (``REPLIES`` below) asks git_status twice in
one message (run once), stages and commits a file, then asks git_log and git_status
again: they run again, because the commit made the earlier answers stale.

Run it offline on the fake Messages API server, on a temporary repository::

    python examples/mcp_git.py

The example writes the tool manifest first (``agentrt tools manifest --agent
examples/mcp_git.py:GitAgent`` does the same: it starts the server once to record its
tools, so agents know them without starting it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from agentrt import Agent
from agentrt.jit.manifest import render_manifest
from agentrt.mcp import StdioServer
from agentrt.mcp._describe import describe_servers
from agentrt.testing import runtime_or_replay, show_run

GIT = StdioServer(command=shutil.which("mcp-server-git") or str(
    Path(sys.executable).with_name("mcp-server-git")))


class GitAgent(Agent):
    system = "You maintain a git repository. Be brief."
    mcp_servers = {"git": GIT}
    tool_config = {"tool_loading": "append"}
    max_iterations = 8


def make_repository(path: Path) -> None:
    for args in (["init", "-q"], ["config", "user.email", "dev@example.com"],
                 ["config", "user.name", "Dev"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "README").write_text("hello\n")
    subprocess.run(["git", "add", "README"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "Initial commit"], cwd=path, check=True)
    (path / "notes.txt").write_text("remember the milk\n")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo, work = Path(tmp) / "repo", Path(tmp)
        repo.mkdir()
        make_repository(repo)
        manifest = work / "tools.manifest.json"
        manifest.write_text(render_manifest(await describe_servers(GitAgent.mcp_servers)))

        class Agent_(GitAgent):
            tool_config = {**GitAgent.tool_config, "manifest": str(manifest)}

        # the scripted model names the temporary repository's path
        REPLIES[:] = _in_repository(REPLIES, str(repo))
        async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
            result = await show_run(Agent_(runtime), "Commit my notes, then show me the log.")
    hits = ", ".join(f"{k} {v}" for k, v in sorted(result.stats.hits.items()))
    print(f"\n{result.stats.tool_calls} tool calls, {result.stats.executed} ran on the git "
          f"server, answered by the pipeline: {hits}")


def _in_repository(replies: list[dict[str, Any]], repo: str) -> list[dict[str, Any]]:
    def each(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: each(v) for k, v in value.items()}
        if isinstance(value, list):
            return [each(v) for v in value]
        return repo if value == "$REPO" else value

    return [each(reply) for reply in replies]


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages; "$REPO" is the repository's path.
REPLIES: list[dict[str, Any]] = [
    {"text": "Let me look at the repository.",
     "tool_calls": [{"name": "git_status", "input": {"repo_path": "$REPO"}},
                    {"name": "git_status", "input": {"repo_path": "$REPO"}}]},
    {"text": "notes.txt is untracked: staging it.",
     "tool_calls": [{"name": "git_add", "input": {"repo_path": "$REPO", "files": ["notes.txt"]}}]},
    {"tool_calls": [{"name": "git_commit",
                     "input": {"repo_path": "$REPO", "message": "Add notes"}}]},
    {"tool_calls": [{"name": "git_log", "input": {"repo_path": "$REPO"}},
                    {"name": "git_status", "input": {"repo_path": "$REPO"}}]},
    {"tool_calls": [{"name": "git_log", "input": {"repo_path": "$REPO"}}]},
    {"text": 'Committed "Add notes"; the log shows it on top of the initial commit, and the '
             "working tree is clean."},
]


if __name__ == "__main__":
    anyio.run(main)
