from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentrt.pipeline import call_key, scope_identity
from agentrt.tools import ToolRegistry

from .support import Upstream, context, processor, resources, use

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                         st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
arguments = st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=5)
identities = st.dictionaries(st.sampled_from(["account", "user", "tenant"]),
                             st.text(min_size=1, max_size=6), max_size=3)


def _shuffled(d: dict[str, Any], seed: int) -> dict[str, Any]:
    items = list(d.items())
    items = items[seed % (len(items) or 1):] + items[:seed % (len(items) or 1)]
    return {k: _shuffled(v, seed) if isinstance(v, dict) else v for k, v in reversed(items)}


@given(arguments, identities, st.integers(min_value=0, max_value=10))
def test_equal_inputs_give_equal_keys_whatever_the_order(args: dict[str, Any],
                                                         identity: dict[str, str],
                                                         seed: int) -> None:
    assert call_key("t", "f", args, "1", identity) == call_key(
        "t", "f", _shuffled(args, seed), "1", _shuffled(identity, seed))


@given(arguments, identities, st.sampled_from(["tool", "function", "value", "version",
                                               "identity"]))
def test_any_change_gives_a_different_key(args: dict[str, Any], identity: dict[str, str],
                                          change: str) -> None:
    base = call_key("tool", "fn", args, "1", identity)
    changed_args = {**args, "__changed__": 1} if change == "value" else args
    changed_identity = {**identity, "account": "other" + identity.get("account", "")} \
        if change == "identity" else identity
    changed = call_key("tool2" if change == "tool" else "tool",
                       "fn2" if change == "function" else "fn", changed_args,
                       "2" if change == "version" else "1", changed_identity)
    assert changed != base


@given(st.integers(min_value=-10**6, max_value=10**6), st.integers(min_value=-5, max_value=5))
def test_changing_one_argument_value_changes_the_key(value: int, delta: int) -> None:
    same = call_key("t", "f", {"x": value}, "1", {}) == call_key("t", "f", {"x": value + delta},
                                                                  "1", {})
    assert same == (delta == 0)


def test_public_functions_drop_identity_and_thread_scope_adds_the_thread() -> None:
    assert scope_identity(public=True, scope="shared", identity={"account": "a"},
                          thread_id="t") == {}
    assert scope_identity(public=False, scope="thread", identity={"account": "a"},
                          thread_id="t") == {"account": "a", "thread": "t"}


@pytest.mark.anyio
async def test_schema_normalizes_before_keying() -> None:
    proc = processor(resources())
    tools = ToolRegistry([Upstream()])
    ctx = context()
    keys = []
    for raw in ({"city": "Paris"}, {"city": "Paris", "unit": "C"}, {"unit": "C", "city": "Paris"}):
        call = await proc.prepare(use("get_weather", **raw), tools, ctx)
        keys.append(call.key)  # type: ignore[union-attr]
    int_key = (await proc.prepare(use("get_product", product_id=42), tools, ctx)).key  # type: ignore[union-attr]
    str_key = (await proc.prepare(use("get_product", product_id="42"), tools, ctx)).key  # type: ignore[union-attr]
    other_tenant = (await proc.prepare(use("get_product", product_id=42), tools,
                                       context(account="globex"))).key  # type: ignore[union-attr]
    assert len(set(keys)) == 1 and int_key == str_key and other_tenant != int_key


@pytest.mark.anyio
async def test_side_effecting_calls_have_no_key() -> None:
    proc = processor(resources())
    call = await proc.prepare(use("set_price", product_id=1, price=2.0),
                              ToolRegistry([Upstream()]), context())
    assert call.key is None  # type: ignore[union-attr]
