from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def anyio_backend() -> str:
    """asyncio by default; tests that must hold on trio too parametrize this fixture."""
    return "asyncio"


# The Redis fixtures (real server, private servers, local cluster, fakeredis).
pytest_plugins = ["redis_support"]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo a test's logging set-up: ``cli.main()`` gives the ``agentrt`` logger a
    handler on the ``sys.stderr`` it sees, pytest's capture, which is closed after
    that test."""
    logger = logging.getLogger("agentrt")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
