from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .support import GIT, TIME, kill_all, own, server_children, write_manifest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _no_server_outlives_its_test() -> Iterator[None]:
    """Every MCP server a test started is gone when it ends: a survivor fails the test,
    and is killed."""
    yield
    left = server_children()
    kill_all(left)
    assert not left, f"MCP server processes outlived the test: {left}"


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """git, time and the project's own stdio server, described once."""
    pytest.importorskip("mcp")
    path = tmp_path_factory.mktemp("mcp") / "tools.manifest.json"
    return write_manifest(path, {"git": GIT, "time": TIME, "own": own()})
