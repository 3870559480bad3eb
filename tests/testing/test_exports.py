"""`agentrt.testing.__all__` is exactly what it exports (httpx's test_exported_members)."""

from __future__ import annotations

import types

import agentrt
import agentrt.testing


def test_all_matches_the_public_names() -> None:
    public = {name for name, value in vars(agentrt.testing).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert set(agentrt.testing.__all__) == public
    assert agentrt.testing.__all__ == sorted(agentrt.testing.__all__)  # no duplicates either


def test_every_exported_class_lives_in_the_package() -> None:
    classes = [(name, value) for name in agentrt.testing.__all__
               if isinstance(value := getattr(agentrt.testing, name), type)]
    assert len(classes) > 10  # the type aliases (Step, Responder) aside
    for name, value in classes:
        assert value.__module__.startswith("agentrt.testing."), name


def test_the_scripted_call_has_a_name_of_its_own_and_keeps_the_old_one() -> None:
    from agentrt.testing import ToolCall, ToolUse

    assert ToolCall is ToolUse
    assert ToolUse is not agentrt.ToolCall  # the runtime's validated call is another thing
