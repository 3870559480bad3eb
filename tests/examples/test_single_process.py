"""The one-process examples: shop, weather_stocks, products_batch, and their stats."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .support import offline_env, run_example, stats_lines

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_shop_before_and_after(tmp_path: Path) -> None:
    out = run_example("shop", env=offline_env(tmp_path)).stdout
    assert stats_lines(out) == [{"tool_calls": 6, "executed": 2, "errors": 0,
                                 "hits": {"memo": 3, "turn_dedup": 1}}]
    assert out.count("  -> get_product(") == 4
    assert ("  pipeline off: 6 tool calls, 6 upstream calls: GET /api/products/42 x4, "
            "GET /api/users/u-7 x2\n") in out
    assert ("  pipeline on:  6 tool calls, 2 upstream calls: GET /api/products/42 x1, "
            "GET /api/users/u-7 x1\n") in out
    assert out.endswith("  saved: 4 of 6 upstream calls (67%)\n")
    assert not (tmp_path / "threads.db").exists()  # the example keeps threads in memory


def test_weather_stocks_duplicates_in_one_turn_run_once(tmp_path: Path) -> None:
    out = run_example("weather_stocks", env=offline_env(tmp_path)).stdout
    assert stats_lines(out) == [{"tool_calls": 4, "executed": 2, "errors": 0,
                                 "hits": {"turn_dedup": 2}}]
    assert out.count("from turn_dedup (the same call earlier in this message)") == 2
    assert out.endswith("4 tool calls in one message, 2 upstream calls: "
                        "GET /weather?city=Paris, GET /quotes/AAPL\n")


def test_products_batch_is_one_upstream_call(tmp_path: Path) -> None:
    # The batch closes when its three products have joined (batch_max), not when a 2 ms
    # window runs out: a loaded machine cannot split it.
    env = offline_env(tmp_path, AGENTRT_BATCH_WINDOW="60", AGENTRT_BATCH_MAX="3")
    out = run_example("products_batch", env=env).stdout
    assert [line.strip() for line in out.splitlines() if "->" in line] == [
        f"-> get_product(product_id={pid})" for pid in (10, 20, 10, 30)]
    assert stats_lines(out) == [{"tool_calls": 4, "executed": 1, "errors": 0,
                                 "hits": {"batch": 3, "turn_dedup": 1}}]
    assert out.endswith("4 tool calls, 1 upstream call: GET /api/products?ids=10,20,30\n")


def test_a_task_on_the_command_line_replaces_the_default(tmp_path: Path) -> None:
    out = run_example("shop", "Is product 17 cheap?", env=offline_env(tmp_path)).stdout
    assert out.startswith("you> Is product 17 cheap?\n")
