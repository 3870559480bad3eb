"""Every example is a small file that says what it shows and how to run it, holds its
scripted replies, has a test here, and a row in the README."""

from __future__ import annotations

import ast

from agentrt.testing import Script

from .support import EXAMPLES, ROOT

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py"))
TESTED = {  # example -> the test module that runs it and checks its stats
    "shop": "test_single_process", "weather_stocks": "test_single_process",
    "products_batch": "test_single_process", "inventory_chat": "test_inventory_chat",
    "research_assistant": "test_jit_examples", "content_creator": "test_jit_examples",
    "fleet": "test_fleet", "service": "test_service", "approvals": "test_approvals",
    "mcp_git": "test_mcp_git", "traced": "test_traced", "typed_answer": "test_typed_answer",
    "temporal_fleet": "test_temporal_fleet",
}
BUILDS_ON = {"traced": "shop"}  # example -> the example whose conversation it replays


def test_every_example_is_documented_scripted_tested_and_listed() -> None:
    assert sorted(TESTED) == NAMES
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    here = EXAMPLES.parent / "tests" / "examples"
    for name in NAMES:
        source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(source)) or ""
        assert f"python examples/{name}.py" in doc, name  # the command that runs it
        assert len(source.splitlines()) < 250, name  # small
        # its own replies, no helper module beside it: a user copies one file (or two,
        # for an example that shows the one it builds on in another light)
        replies = EXAMPLES / f"{BUILDS_ON.get(name, name)}.py"
        assert Script.load(replies).remaining > 0, name
        assert "runtime_or_replay(REPLIES" in source, name
        assert f"examples/{name}.py" in (here / f"{TESTED[name]}.py").read_text() or \
            f'"{name}"' in (here / f"{TESTED[name]}.py").read_text(), name
        assert f"| `{name}.py` |" in readme, name
