from __future__ import annotations

import logging
from typing import TYPE_CHECKING

# The SDK's import costs 1.5-3 s of CPU, several times that on a loaded machine. Made here,
# once per worker at collection, it is not charged against the timeout of whichever test
# first builds a client (agentrt imports it on first use).
import anthropic  # noqa: F401
import pytest
from hypothesis import HealthCheck, settings

from agentrt.testing import FakeAnthropicServer

if TYPE_CHECKING:
    from collections.abc import Iterator


# Properties, not stopwatches: hypothesis's per-example deadline (200 ms) and its "data
# generation is too slow" check fail on a busy machine for reasons that are not the code's.
settings.register_profile("agentrt", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("agentrt")


@pytest.fixture
def anyio_backend() -> str:
    """asyncio by default; tests that must hold on trio too parametrize this fixture."""
    return "asyncio"


# The Redis fixtures (real server, private servers, local cluster, fakeredis), and every
# child process started through `processes`, reaped after each test.
pytest_plugins = ["processes", "redis_support"]


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


@pytest.fixture(autouse=True)
def _http_servers_are_marked(request: pytest.FixtureRequest,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test-fast` (``-m "not integration and not redis"``) starts no real part: a test
    that starts the fake Messages API server (real HTTP) must say so with ``integration``
    (or ``redis``, which test-fast leaves out too).
    Unit tests of the loop use ``agentrt.testing.ScriptedModel`` instead."""
    if any(request.node.get_closest_marker(m) for m in ("integration", "redis")):
        return
    nodeid = request.node.nodeid

    async def refuse(self: FakeAnthropicServer) -> FakeAnthropicServer:
        pytest.fail(f"{nodeid} starts FakeAnthropicServer (real HTTP): mark it "
                    "@pytest.mark.integration, or use agentrt.testing.ScriptedModel",
                    pytrace=False)

    monkeypatch.setattr(FakeAnthropicServer, "__aenter__", refuse)
