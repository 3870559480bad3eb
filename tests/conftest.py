from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """asyncio by default; tests that must hold on trio too parametrize this fixture."""
    return "asyncio"
