"""Every example is a small file that says what it shows and how to run it, has its
scripted replies, a test here, and a row in the README."""

from __future__ import annotations

import ast

from .support import EXAMPLES, ROOT

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
TESTED = {  # example -> the test module that runs it and checks its stats
    "shop": "test_single_process", "weather_stocks": "test_single_process",
    "products_batch": "test_single_process", "inventory_chat": "test_inventory_chat",
    "research_assistant": "test_jit_examples", "content_creator": "test_jit_examples",
    "fleet": "test_fleet", "service": "test_service", "traced": "test_traced",
}


def test_every_example_is_documented_scripted_tested_and_listed() -> None:
    assert sorted(TESTED) == NAMES
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    here = EXAMPLES.parent / "tests" / "examples"
    for name in NAMES:
        source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(source)) or ""
        assert f"python examples/{name}.py" in doc, name  # the command that runs it
        assert len(source.splitlines()) < 250, name  # small
        assert (EXAMPLES / f"{name}.replay.json").is_file(), name
        assert f"examples/{name}.py" in (here / f"{TESTED[name]}.py").read_text() or \
            f'"{name}"' in (here / f"{TESTED[name]}.py").read_text(), name
        assert f"| `{name}.py` |" in readme, name
