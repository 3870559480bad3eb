"""A reply's content is checked before it is stored: nothing in it may make a later request
of the thread unsendable. The quick look at its JSON text must never pass what the walk of
the content would refuse."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agentrt.llm._client import _MAX_DEPTH, _plainly_sendable, _unsendable

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=30)


def _nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@given(st.lists(st.dictionaries(st.text(max_size=5), _JSON, max_size=4), max_size=3))
def test_what_the_quick_look_passes_the_walk_passes(content: list[dict[str, Any]]) -> None:
    if _plainly_sendable(content):
        assert _unsendable(content) is None


@given(st.integers(min_value=0, max_value=2 * _MAX_DEPTH))
def test_the_quick_look_never_passes_content_nested_too_deep(depth: int) -> None:
    content = [{"type": "tool_use", "input": _nested(depth)}]
    if _unsendable(content) is not None:
        assert not _plainly_sendable(content)


def test_a_lone_surrogate_is_left_to_the_walk_which_names_it() -> None:
    content = [{"type": "text", "text": "ok \ud800 then"}]
    assert not _plainly_sendable(content)
    assert "lone surrogate" in (_unsendable(content) or "")


def test_an_ordinary_reply_passes_at_a_look() -> None:
    content = [{"type": "text", "text": "Checking the stock."},
               {"type": "tool_use", "id": "toolu_1", "name": "get_product",
                "input": {"product_id": 42, "tags": ["a", "b"]}}]
    assert _plainly_sendable(content) and _unsendable(content) is None
