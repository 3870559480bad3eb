"""The Redis test fixtures themselves: private servers and the local cluster behave as said."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import redis
from redis_support import free_port

if TYPE_CHECKING:
    from redis_support import LocalRedisCluster, RedisServerProcess

pytestmark = pytest.mark.integration


def client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.3,
                       socket_connect_timeout=0.3, retry=None)


def test_a_private_server_stops_restarts_on_its_port_and_pauses(
        redis_server_process: RedisServerProcess) -> None:
    server = redis_server_process
    assert server.running and server.url == f"redis://127.0.0.1:{server.port}/0"
    with client(server.port) as r:
        r.set("k", "v")
    with pytest.raises(RuntimeError, match="already running"):
        server.start()

    first_pid = server.pid
    server.stop()
    assert not server.running
    with client(server.port) as r, pytest.raises(redis.ConnectionError):
        r.ping()
    server.start()
    assert server.running and server.pid != first_pid
    with client(server.port) as r:
        assert r.get("k") == b"v"  # AOF: a restart keeps the data

    server.pause()
    with client(server.port) as r, pytest.raises(redis.TimeoutError):
        r.ping()
    server.resume()
    with client(server.port) as r:
        assert r.ping()

    server.pause()
    server.stop()  # a paused server is resumed so that it can exit
    assert not server.running
    server.start()
    server.kill()
    assert not server.running


def test_the_local_cluster_has_three_masters_covering_every_slot(
        redis_cluster_nodes: LocalRedisCluster, redis_cluster: str) -> None:
    assert redis_cluster == redis_cluster_nodes.url
    for node in redis_cluster_nodes.nodes:
        with client(node.port) as r:
            info = r.cluster("INFO")
            assert info["cluster_state"] == "ok"
            assert int(info["cluster_slots_assigned"]) == 16384
            assert int(info["cluster_size"]) == 3


def test_free_port_leaves_room_for_a_cluster_bus() -> None:
    port = free_port(with_bus=True)
    assert 0 < port <= 65535 - 10000


def test_the_local_cluster_starts_quickly(redis_cluster_nodes: LocalRedisCluster) -> None:
    # started once per session; redis-cli --cluster create waits about a second itself
    assert redis_cluster_nodes.startup_seconds is not None
    assert redis_cluster_nodes.startup_seconds < 15
