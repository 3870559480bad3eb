"""Every code block of the documentation site (docs/) works, run as the README's are.

A ```` ```python ```` or ```` ```sh ```` block in a page runs (a script with this test
run's Python, or bash) in a fresh copy of the repository whose ``.venv`` is this one,
offline: the same copy and environment as tests/test_readme.py. ``<!-- expect: TEXT
-->`` lines right after a block name text its output must contain. A block that must
not run (it needs the network or an API key, or is a fragment of a class) is preceded
by ``<!-- not-run: REASON -->``; a Python one must still compile. Blocks of other
languages (``toml``, ``text``) are shown, not run.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import processes
import pytest
from test_readme import VENV, _copy, _env

from agentrt.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(
    r"(?:^<!-- not-run: (?P<why>.+?) -->\n)?^```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^```\n"
    r"(?P<expect>(?:<!-- expect: .*? -->\n)*)", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    page: str
    index: int
    lang: str
    body: str
    expect: tuple[str, ...]
    not_run: str | None  # the reason it is not run

    @property
    def id(self) -> str:
        return f"{self.page}-{self.index}"


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def blocks() -> list[Block]:
    found = []
    for page in pages():
        name = page.relative_to(DOCS).with_suffix("").as_posix()
        for index, m in enumerate(_FENCE.finditer(page.read_text(encoding="utf-8"))):
            found.append(Block(name, index, m["lang"], m["body"],
                               tuple(re.findall(r"<!-- expect: (.*?) -->", m["expect"])),
                               m["why"]))
    return found


RUNNABLE = [b for b in blocks() if b.lang in ("python", "sh") and b.not_run is None]


def test_the_pages_have_code_that_runs() -> None:
    assert len(pages()) >= 12
    assert len([b for b in RUNNABLE if b.lang == "python"]) >= 8
    for block in blocks():
        if block.lang == "python":  # not run or not: at least valid
            compile(block.body, f"docs/{block.page}.md block {block.index}", "exec")
        assert block.lang, f"docs/{block.page}.md block {block.index} names no language"


def test_a_marker_is_understood() -> None:
    text = "<!-- not-run: needs an API key -->\n```python\nx = 1\n```\n<!-- expect: 1 -->\n"
    m = _FENCE.search(text)
    assert m is not None and m["why"] == "needs an API key" and m["lang"] == "python"


def _hooks() -> Any:  # docs/_hooks is not a package: loaded by path, as mkdocs loads it
    spec = importlib.util.spec_from_file_location("agentrt_docs", DOCS / "_hooks" /
                                                  "agentrt_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_reference_is_generated_from_the_model() -> None:
    table = _hooks().settings_reference()
    for name, info in Settings.model_fields.items():
        assert f"### `{name}` {{#{name}}}" in table and f"`AGENTRT_{name.upper()}`" in table
        assert (info.description or "").split()[0] in table
    assert "<!-- settings-reference -->" in (DOCS / "settings.md").read_text()


def test_the_api_reference_names_every_public_name() -> None:
    hooks = _hooks()
    for module in hooks.PUBLIC_MODULES:
        page = (DOCS / "api" / f"{module.rpartition('.')[2]}.md").read_text()
        assert f"<!-- api: {module} -->" in page
        entries = hooks.api_entries(module)
        assert all(f"::: {module}.{name}" in entries for name in hooks.public_names(module))


def test_every_public_name_has_a_docstring() -> None:
    pytest.importorskip("griffe", reason="the docs extra (make docs) brings griffe")
    assert _hooks().missing_docstrings() == []


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_docs_block_runs(block: Block, tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    if block.lang == "sh":
        command = ["bash", "-euo", "pipefail", "-c", block.body]
    else:
        (copy / "docs_snippet.py").write_text(block.body, encoding="utf-8")
        command = [str(VENV / "bin" / "python"), "docs_snippet.py"]
    proc = processes.run(command, cwd=copy, env=_env(), capture_output=True, text=True,
                         timeout=110)
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, report
    for text in block.expect:
        assert text in proc.stdout, f"expected {text!r}\n{report}"
    assert "Traceback" not in proc.stderr, report
