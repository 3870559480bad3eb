from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def anyio_backend() -> str:
    """asyncio by default; tests that must hold on trio too parametrize this fixture."""
    return "asyncio"


# The Redis fixtures (real server, private servers, local cluster, fakeredis).
pytest_plugins = ["redis_support"]


@pytest.fixture(autouse=True)
def _restore_structlog_config() -> Iterator[None]:
    """Undo a test's logging set-up: ``cli.main()`` points structlog at the
    ``sys.stderr`` it sees, pytest's capture, which is closed after that test,
    so a later test's warning would fail with "I/O operation on closed file"."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
