from __future__ import annotations

import subprocess
import sys
import types

import pytest

import agentrt
import agentrt.pipeline


@pytest.mark.parametrize("module", [agentrt, agentrt.pipeline])
def test_all_matches_the_public_names(module: types.ModuleType) -> None:
    """httpx's test_exported_members: ``__all__`` and what the module offers agree (the
    top level loads its names on first use, so it is asked through ``dir``)."""
    public = {name for name in dir(module)
              if not name.startswith("_") and not isinstance(getattr(module, name),
                                                             types.ModuleType)}
    assert set(module.__all__) - {"__version__"} == public
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("module", [agentrt, agentrt.pipeline])
def test_every_export_is_importable(module: types.ModuleType) -> None:
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Agnet'"):
        agentrt.Agnet  # noqa: B018


HEAVY = ("anthropic", "redis", "httpx2", "agentrt.jit", "agentrt.testing", "h11")


@pytest.mark.integration
def test_import_agentrt_leaves_the_heavy_modules_out() -> None:
    """``import agentrt`` (and using the user API's light names) loads neither the SDK,
    nor redis-py, nor the JIT package, nor the fake server's HTTP parser: each comes in
    when the part that needs it is used."""
    code = ("import sys, agentrt; agentrt.Tool; agentrt.function; agentrt.RunResult; "
            "agentrt.Agent; print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{sorted({h.split('.')[0] for h in HEAVY})!r} and m in {list(HEAVY)!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""
