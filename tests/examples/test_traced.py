"""examples/traced.py: the shop run's spans on the console, offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .support import offline_env, run_example

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_traced_prints_each_span_and_the_tree(tmp_path: Path) -> None:
    out = run_example("traced", env=offline_env(tmp_path)).stdout
    assert out.count("[span] execute_tool") == 6 and out.count("[span] chat ") == 4
    tree = out.split("The span tree of run ", 1)[1].splitlines()[1:12]
    assert [line.strip() for line in tree] == [
        "invoke_agent ShopAgent",
        "chat claude-haiku-5-5",
        "execute_tool get_product  <- executed", "execute_tool get_user  <- executed",
        "chat claude-haiku-5-5",
        "execute_tool get_product  <- memo", "execute_tool get_product  <- turn_dedup",
        "chat claude-haiku-5-5",
        "execute_tool get_product  <- memo", "execute_tool get_user  <- memo",
        "chat claude-haiku-5-5"]
    assert all(line.startswith("    ") for line in tree[1:])  # children of the run
    assert out.endswith("6 tool calls, 2 executed, 4 answered by the pipeline\n")
