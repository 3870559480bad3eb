from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .fixtures import reset

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _fresh_fixture_modules() -> Iterator[None]:
    """Every test starts with no fixture tool module imported and zeroed counters."""
    reset()
    yield
    reset()
