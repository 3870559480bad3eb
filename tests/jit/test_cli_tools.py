from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING

from agentrt.cli import main

from .fixtures import IMPORTS, PACKAGE, reset
from .helpers import BROWSER, CATALOG, SEARCH

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

AGENT = "jit.agents:CliResearchAgent"


def tools(*argv: str) -> tuple[int, str]:
    """Through the real entry point, as `agentrt tools ...` runs."""
    out = io.StringIO()
    code = main(["tools", *argv], stdout=out)
    return code, out.getvalue()


def test_manifest_writes_then_checks(tmp_path: Path) -> None:
    target = tmp_path / "configs" / "tools.manifest.json"
    code, out = tools("manifest", *CATALOG, "--manifest", str(target))
    assert code == 0 and out == f"{target}: {len(CATALOG)} tools\n"
    index = json.loads(target.read_text().splitlines()[0])["tools"]
    assert index["location"][index["name"].index("web_search")] == SEARCH
    reset()
    assert tools("manifest", "--check", "--manifest", str(target)) == (
        0, f"{target}: up to date ({len(CATALOG)} tools)\n")  # re-reads the listed paths
    target.write_text(target.read_text().replace("Search the web", "Search"), encoding="utf-8")
    code, out = tools("manifest", "--check", "--manifest", str(target))
    assert code == 1 and "out of date" in out
    assert tools("manifest", "--manifest", str(target))[0] == 0
    assert tools("manifest", "--check", "--manifest", str(target))[0] == 0


def test_manifest_fresh_drops_tools_not_named_again(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    tools("manifest", *CATALOG, "--manifest", str(target))
    assert tools("manifest", "--fresh", BROWSER, "--manifest", str(target)) == (
        0, f"{target}: 1 tools\n")
    assert json.loads(target.read_text().splitlines()[0])["tools"]["location"] == [BROWSER]


def test_list_and_show_import_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    tools("manifest", *CATALOG, "--manifest", str(target))
    reset()
    code, out = tools("list", "--manifest", str(target))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TOOL", "SOURCE", "STATUS", "FUNCTIONS", "SUMMARY"]
    assert any(line.split()[:4] == ["web_search", "agent", "-", "2"] for line in lines)
    code, out = tools("show", "web_search", "--manifest", str(target))
    assert code == 0
    assert out.startswith("web_search: Search the web and read pages.\n"
                          f"  import path  {SEARCH}\n")
    assert "    fetch_page: Fetch a web page as text.\n" in out
    assert '"required": ["url"]' in out
    assert not IMPORTS and f"{PACKAGE}.search" not in sys.modules


def test_an_agents_catalog_with_its_policy(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    assert tools("manifest", "--agent", AGENT, "--manifest", str(target))[0] == 0
    reset()
    _, out = tools("list", "--agent", AGENT, "--manifest", str(target))
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:]}
    assert rows["notes"] == ["core", "core", "1"]
    assert rows["tool_loader"] == ["core", "core", "1"]
    assert rows["browser"] == ["agent", "blocked", "1"]
    assert rows["files"][:2] == ["agent", "allowed"] and "2 fns" in out
    _, out = tools("show", "browser", "--agent", AGENT, "--manifest", str(target))
    assert "  status       tool 'browser' is not enabled for this agent\n" in out
    assert not IMPORTS


def test_show_an_unknown_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "m.json"
    tools("manifest", SEARCH, "--manifest", str(target))
    assert tools("show", "web_serch", "--manifest", str(target)) == (2, "")
    assert "no tool 'web_serch' in the catalog (did you mean 'web_search'?)" in \
        capsys.readouterr().err


def test_an_older_manifest_is_refused_and_regenerating_it_keeps_its_tools(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "m.json"
    old = {"format": "agentrt-tools-manifest", "version": 2, "startup_bytes": 0,
           "paths": [SEARCH, BROWSER], "by_name": {}, "requires": {}, "outside": {},
           "functions": {}, "index": {}, "tools": []}
    target.write_text(json.dumps(old), encoding="utf-8")
    assert tools("list", "--manifest", str(target)) == (2, "")
    assert capsys.readouterr().err == (
        f"agentrt: {target}: tool manifest format version 2 (this agentrt reads version 4); "
        "regenerate it with `agentrt tools manifest`\n")
    assert tools("manifest", "--manifest", str(target)) == (0, f"{target}: 2 tools\n")
    assert json.loads(target.read_text().splitlines()[0])["tools"]["location"] == [
        BROWSER, SEARCH]
    target.write_text("{broken\n", encoding="utf-8")
    assert tools("manifest", "--manifest", str(target)) == (2, "")
    assert "(--fresh writes it anew" in capsys.readouterr().err
    assert tools("manifest", "--fresh", SEARCH, "--manifest", str(target)) == (
        0, f"{target}: 1 tools\n")
    version_3 = {"format": "agentrt-tools-manifest", "version": 3, "sections": [],
                 "tools": {"name": ["b", "g", "s"], "kind": ["python", "mcp", "python"],
                           "location": [BROWSER, "git", SEARCH], "requires": {},
                           "functions": {}}}
    target.write_text(json.dumps(version_3) + '\n{"version": []}\n', encoding="utf-8")
    assert tools("manifest", "--manifest", str(target)) == (0, f"{target}: 2 tools\n")
