from __future__ import annotations

import types

import agentrt


def test_all_matches_the_public_names() -> None:
    public = {name for name, value in vars(agentrt).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert set(agentrt.__all__) == public | {"__version__"}
    assert len(agentrt.__all__) == len(set(agentrt.__all__))


def test_every_export_is_importable_from_the_top() -> None:
    for name in agentrt.__all__:
        assert getattr(agentrt, name) is not None, name
