"""research_assistant and content_creator: JIT tools under the allow-lists in configs/."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from agentrt.cli import main

from .support import EXAMPLES, ROOT, offline_env, run_example, stats_lines

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_research_assistant(tmp_path: Path) -> None:
    proc = run_example("research_assistant", env=offline_env(tmp_path))
    out = proc.stdout
    # presentation needs files: activated with it, first
    assert "  <- initialize_tools: Activated: web_search, files, presentation.\n" in out
    assert ("  <- open_url: error: Function 'open_url' cannot be called: tool 'browser' is "
            "not enabled for this agent.\n") in out
    assert stats_lines(out) == [{"tool_calls": 8, "executed": 6, "errors": 1,
                                 "hits": {"turn_dedup": 1}}]
    assert ("tools active on the thread: tool_loader, tool_finder, files, web_search, "
            "presentation\n") in out
    assert out.endswith("tool modules imported: search, files, presentation (never imported: "
                        "browser, images, publisher)\n")
    assert "not_in_manifest" not in proc.stderr  # the committed manifest describes them all


def test_content_creator(tmp_path: Path) -> None:
    proc = run_example("content_creator", env=offline_env(tmp_path))
    out = proc.stdout
    assert ("  <- initialize_tools: Activated: presentation, images.\n"
            "       Degraded: presentation (its dependency 'files' is not enabled for this "
            "agent); some of its functions may fail.\n") in out
    assert ("  <- publish_post: error: Function 'publish_post' cannot be called: tool "
            "'publisher' is disabled for this agent.\n") in out
    assert stats_lines(out) == [{"tool_calls": 5, "executed": 4, "errors": 1, "hits": {}}]
    assert "never imported: files, browser, publisher" in out
    assert "jit.dependency_blocked" in proc.stderr  # and a warning for the operator


@pytest.mark.parametrize("agent", ["research_assistant.py:ResearchAssistant",
                                   "content_creator.py:ContentCreator"])
def test_the_committed_manifest_is_up_to_date(agent: str, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    code = main(["tools", "manifest", "--check", "--agent", f"{EXAMPLES / agent}"], stdout=out)
    assert (code, out.getvalue()) == (0, "configs/tools.manifest.json: up to date (6 tools)\n")


def test_the_configs_policies_as_the_cli_lists_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    status = {}
    for config in ("research_assistant", "content_creator", "default"):
        out = io.StringIO()
        assert main(["tools", "list", "--config", f"configs/{config}.toml"], stdout=out) == 0
        status[config] = {line.split()[0]: line.split()[2] for line in
                          out.getvalue().splitlines()[1:]}
    assert status["research_assistant"] == {
        "browser": "blocked", "files": "allowed", "images": "blocked",
        "presentation": "allowed", "publisher": "blocked", "web_search": "allowed"}
    assert status["content_creator"] == {
        "browser": "blocked", "files": "blocked", "images": "allowed",
        "presentation": "allowed", "publisher": "blocked", "web_search": "allowed"}
    assert status["default"] == {
        "browser": "blocked", "files": "allowed", "images": "allowed",
        "presentation": "allowed", "publisher": "blocked", "web_search": "allowed"}
