"""Redis for the tests: the shared server, private servers, a local cluster, fakeredis.

Loaded as a pytest plugin by ``tests/conftest.py``. Fixtures:

``redis_url`` (session)
    URL of the real server every ``@pytest.mark.redis`` test shares:
    ``AGENTRT_TEST_REDIS_URL``, else ``redis://127.0.0.1:6379/15`` (a db number
    of its own). Skips the test when nothing answers there, except under CI
    (``CI`` set), where that fails: CI starts a server, so CI never skips.
``redis_prefix``
    A key prefix unique to the test (``agentrt-test-<hex>``).
``redis_gate`` (factory)
    ``redis_gate(**options) -> RedisGate`` on ``redis_url`` with the test's
    prefix (``prefix=``, ``url=`` and any RedisGate option may be overridden);
    several calls give several gates sharing data, like several processes.
    Afterwards the gates are closed and every key under the prefix is deleted.
``fake_redis_server`` / ``fake_redis_gate``
    A ``fakeredis.FakeServer`` and a ``RedisGate`` whose client talks to it
    (fast unit tests; set ``fake_redis_server.connected = False`` to take
    "Redis" down).
``redis_server_process`` (function)
    A private redis-server on a free loopback port (AOF on, so a restart keeps
    the data): ``.url``, ``.port``, ``.stop()``, ``.start()`` again on the same
    port, ``.kill()`` (SIGKILL), ``.pause()`` / ``.resume()`` (SIGSTOP /
    SIGCONT). Killed at the end of the test.
``redis_cluster_nodes`` / ``redis_cluster`` (session)
    A real 3-master Redis Cluster on free loopback ports, started once per
    session with redis-server and ``redis-cli --cluster create``; the fixture
    ``redis_cluster`` yields its URL. Skipped with the reason when
    redis-server or redis-cli is missing (failed under CI).
``redis_cluster_gate`` (factory)
    Like ``redis_gate`` on the cluster (``cluster=True``); keys are deleted on
    every node afterwards.

Tests using these fixtures are marked automatically (``redis`` for the shared
server, ``integration`` for private servers and the cluster), so
``-m "not redis and not integration"`` never needs a server. Every redis-server
started here is stopped by its fixture, and at interpreter exit at the latest.

``redis.asyncio`` is asyncio-only: a test using a gate pins ``anyio_backend``.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import processes
import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from agentrt._redis import RedisGate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = [
    "DEFAULT_TEST_REDIS_URL",
    "GateFactory",
    "LocalRedisCluster",
    "ManualClock",
    "RedisServerProcess",
    "delete_keys",
    "free_port",
    "make_fake_gate",
    "subscribers",
    "until_subscribed",
]

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
TEST_GATE_TIMEOUT = 15.0  # a starved machine stalled calls over 2 s: only a hang may trip it
_LIVE: set[RedisServerProcess] = set()


class ManualClock:
    """A clock for ``RedisGate(clock=...)``: time moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _skip_or_fail(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI must provide it: tests are not skipped under CI)")
    pytest.skip(reason)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port (``with_bus``: port + 10000 free too, a cluster node's bus).

    Chosen below the kernel's ephemeral range, so no client connection (this
    process's or another's) can take it between now and the server's bind, or
    while a test has the server stopped for a restart.
    """
    low, _ = _ephemeral_range()
    top = low - 1 - (10000 if with_bus else 0)
    if top < 10000:  # an unusual ephemeral range: fall back to asking the kernel
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(10000, top)
        if _bindable(port) and (not with_bus or _bindable(port + 10000)):
            return port
    raise RuntimeError("no free loopback port found")


def _answers(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5,
                         socket_connect_timeout=0.5, retry=None)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class RedisServerProcess:
    """One redis-server child process on a loopback port, with its files in ``directory``."""

    def __init__(self, directory: Path, *, port: int | None = None, cluster: bool = False,
                 persistent: bool = True, extra: tuple[str, ...] = ()) -> None:
        self.port = port if port is not None else free_port(with_bus=cluster)
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "redis.log"
        self.args = [
            _require("redis-server"),
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--daemonize", "no", "--save", "", "--logfile", "",
            "--appendonly", "yes" if persistent else "no",
        ]
        if cluster:
            self.args += ["--cluster-enabled", "yes",
                          "--cluster-config-file", f"nodes-{self.port}.conf"]
        self.args += list(extra)
        self.lasting = cluster  # the cluster is the session's: reaped at its end, not a test's
        self._process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.running else "stopped"
        return f"RedisServerProcess(port={self.port}, {state})"

    def start(self, *, timeout: float = 10.0) -> None:
        """Start (or start again, on the same port) and wait until it answers PING."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        with self.log_path.open("ab") as log_file:
            self._process = processes.popen(self.args, stdout=log_file,
                                            stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, lasting=self.lasting)
        _LIVE.add(self)
        self.paused = False
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if not self.running or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM (a paused server is resumed first, so it can exit) and wait."""
        process = self._process
        if process is None or process.poll() is not None:
            self._forget()
            return
        if self.paused:
            self.resume()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown work (an unflushed AOF tail may be lost)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._forget()

    def pause(self) -> None:
        """SIGSTOP: the port stays open, but nothing answers."""
        assert self._process is not None and self.running, f"{self!r} is not running"
        os.kill(self._process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self._process is not None, f"{self!r} was never started"
        os.kill(self._process.pid, signal.SIGCONT)
        self.paused = False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _forget(self) -> None:
        self.paused = False
        _LIVE.discard(self)


class LocalRedisCluster:
    """A Redis Cluster of ``masters`` redis-server processes on loopback, no replicas."""

    def __init__(self, directory: Path, *, masters: int = 3) -> None:
        self.nodes = [RedisServerProcess(directory / f"node{i}", cluster=True, persistent=False)
                      for i in range(masters)]
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, *, timeout: float = 30.0) -> None:
        started = time.monotonic()
        try:
            for node in self.nodes:
                node.start()
            created = processes.run(
                [_require("redis-cli"), "--cluster", "create",
                 *(f"127.0.0.1:{node.port}" for node in self.nodes),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
            if created.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed:\n"
                                   + created.stdout.decode(errors="replace")
                                   + created.stderr.decode(errors="replace"))
            self._wait_until_ok(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_until_ok(self, deadline: float) -> None:
        expected = {"cluster_state": "ok", "cluster_slots_assigned": "16384",
                    "cluster_known_nodes": str(len(self.nodes))}
        pending = list(self.nodes)
        while pending:
            node = pending[0]
            if expected.items() <= _cluster_info(node.port).items():
                pending.pop(0)
            elif time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not become ok: node {node.port} says "
                                   f"{_cluster_info(node.port)}")
            else:
                time.sleep(0.02)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_info(port: int) -> dict[str, str]:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0, retry=None)
    try:
        text = client.execute_command("CLUSTER INFO")
    except (redis.RedisError, OSError) as exc:
        return {"error": repr(exc)}
    finally:
        client.close()
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    return dict(line.split(":", 1) for line in str(text).split() if ":" in line)


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        _skip_or_fail(f"{program} is not installed (apt-get install redis-server)")
        raise AssertionError("unreachable")  # pragma: no cover
    return path


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.kill()


async def delete_keys(urls: list[str], pattern: str) -> int:
    """Delete every key matching ``pattern`` on each server (SCAN MATCH, never KEYS).

    ``urls`` are standalone servers or the nodes of a cluster: keys are deleted
    in groups of one hash slot, which a cluster node requires.
    """
    deleted = 0
    for url in urls:
        client = aioredis.Redis.from_url(url, socket_timeout=5.0)
        try:
            by_slot: dict[int, list[bytes]] = {}
            async for key in client.scan_iter(match=pattern, count=500):
                by_slot.setdefault(key_slot(key), []).append(key)
            for keys in by_slot.values():
                deleted += await client.unlink(*keys)
        finally:
            await client.aclose()
    return deleted


async def subscribers(gate: RedisGate, pattern: str) -> int:
    """How many subscriptions the channels matching ``pattern`` have, over every node."""
    channels = await gate.client.pubsub_channels(pattern)
    counts = await gate.client.pubsub_numsub(*channels) if channels else []
    return sum(count for _, count in counts)


async def until_subscribed(gate: RedisGate, pattern: str, count: int = 1, *,
                           timeout: float = 30.0) -> None:
    """Wait until ``count`` subscribers listen on channels matching ``pattern``: a message
    published before then would be lost, and pub/sub has no event to wait on but this."""
    with anyio.fail_after(timeout):
        while await subscribers(gate, pattern) < count:
            await anyio.sleep(0.01)


def make_fake_gate(server: Any, **options: Any) -> RedisGate:
    """A RedisGate (any options) whose client talks to ``server``, a fakeredis.FakeServer."""
    import fakeredis

    # The real client the gate builds has not connected (it does so lazily): nothing to close.
    gate = RedisGate("redis://fakeredis.invalid:6379/0", **options)
    gate.client = fakeredis.FakeAsyncRedis(server=server)
    return gate


class GateFactory(Protocol):
    def __call__(self, *, prefix: str | None = ..., url: str | None = ...,
                 **options: Any) -> RedisGate: ...


class _Gates:
    """Makes gates with the test's prefix; closes them and deletes the prefix's keys."""

    def __init__(self, url: str, prefix: str, *, cluster: bool, node_urls: list[str]) -> None:
        self.url, self.prefix, self.cluster, self.node_urls = url, prefix, cluster, node_urls
        self.gates: list[RedisGate] = []
        self.prefixes = {prefix}

    def __call__(self, *, prefix: str | None = None, url: str | None = None,
                 **options: Any) -> RedisGate:
        options.setdefault("timeout", TEST_GATE_TIMEOUT)
        options.setdefault("cluster", self.cluster)
        prefix = self.prefix if prefix is None else prefix
        self.prefixes.add(prefix)
        gate = RedisGate(url or self.url, prefix=prefix, **options)
        self.gates.append(gate)
        return gate

    async def aclose(self) -> None:
        for gate in self.gates:
            await gate.aclose()
        for prefix in self.prefixes:
            await delete_keys(self.node_urls, f"{prefix}*")


# -- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("AGENTRT_TEST_REDIS_URL") or DEFAULT_TEST_REDIS_URL
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        _skip_or_fail(f"no redis-server answers at {url} ({type(exc).__name__}); start one "
                      "on 127.0.0.1:6379 (.ci/run does) or set AGENTRT_TEST_REDIS_URL")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_prefix() -> str:
    return f"agentrt-test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def redis_gate(redis_url: str, redis_prefix: str) -> AsyncIterator[GateFactory]:
    gates = _Gates(redis_url, redis_prefix, cluster=False, node_urls=[redis_url])
    try:
        yield gates
    finally:
        await gates.aclose()


@pytest.fixture
def fake_redis_server() -> Any:
    import fakeredis

    return fakeredis.FakeServer()


@pytest.fixture
async def fake_redis_gate(fake_redis_server: Any, redis_prefix: str) -> AsyncIterator[RedisGate]:
    gate = make_fake_gate(fake_redis_server, prefix=redis_prefix)
    try:
        yield gate
    finally:
        await gate.aclose()


@pytest.fixture
def redis_server_process(tmp_path: Path) -> Iterator[RedisServerProcess]:
    server = RedisServerProcess(tmp_path / "redis-server")
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def redis_cluster_nodes(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    _require("redis-server")
    _require("redis-cli")
    failures: list[str] = []
    for _ in range(3):  # a port taken meanwhile by something else: try other ports
        cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
        try:
            cluster.start()
            break
        except RuntimeError as exc:
            failures.append(str(exc))
    else:
        pytest.fail("the local Redis Cluster did not start:\n" + "\n---\n".join(failures))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster(redis_cluster_nodes: LocalRedisCluster) -> str:
    return redis_cluster_nodes.url


@pytest.fixture
async def redis_cluster_gate(redis_cluster_nodes: LocalRedisCluster,
                             redis_prefix: str) -> AsyncIterator[GateFactory]:
    gates = _Gates(redis_cluster_nodes.url, redis_prefix, cluster=True,
                   node_urls=redis_cluster_nodes.urls)
    try:
        yield gates
    finally:
        await gates.aclose()


@pytest.fixture(params=[pytest.param("server", marks=pytest.mark.redis),
                        pytest.param("cluster", marks=pytest.mark.integration),
                        "fakeredis"])
def any_redis_gate(request: pytest.FixtureRequest) -> RedisGate:
    """The same test on a real redis-server, a local 3-master Redis Cluster and fakeredis
    (the fast layer; never the only proof). The real cases carry the marks of what they
    start (``redis``, ``integration``), so ``make test-fast`` runs only fakeredis."""
    if request.param == "fakeredis":
        found: RedisGate = request.getfixturevalue("fake_redis_gate")
        return found
    factory = request.getfixturevalue("redis_gate" if request.param == "server"
                                      else "redis_cluster_gate")
    return factory()  # type: ignore[no-any-return]


# -- markers -----------------------------------------------------------------

_SHARED_SERVER = {"redis_url", "redis_gate"}
_OWN_SERVERS = {"redis_server_process", "redis_cluster", "redis_cluster_nodes",
                "redis_cluster_gate"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _SHARED_SERVER:
            item.add_marker(pytest.mark.redis)
        if names & _OWN_SERVERS:
            item.add_marker(pytest.mark.integration)
