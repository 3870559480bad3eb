"""The runtime's one Redis connection pool, behind a circuit breaker.

Every Redis call in agentrt goes through :meth:`RedisGate.run`: bounded by a small
timeout, its failures translated to :class:`BackendUnavailableError`. The first
failure logs one ``redis.unavailable`` warning and opens the circuit: for
``retry_after`` seconds callers step aside at once (the in-process layers carry
on) instead of each waiting out a timeout. The next call after that probes Redis
again, and the first success logs ``redis.recovered``: no restart needed.

``redis.asyncio`` is asyncio-only, so everything Redis-backed needs the asyncio
backend (the in-process core runs on trio as well).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from ._errors import BackendUnavailableError, ConfigError
from .log import get_logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["RedisGate", "mask_url"]

log = get_logger("agentrt.redis")

# Errors in a reply that say the server itself is in trouble (so the circuit opens),
# as opposed to a reply refusing this one command.
_SERVER_TROUBLE = (ReadOnlyError, OutOfMemoryError, ClusterDownError, TryAgainError)
T = TypeVar("T")


def mask_url(url: str) -> str:
    """The URL without its password (in the userinfo or a ``password=`` query), for logs."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        # hostport as written: keeps an IPv6 host's brackets and the port
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() == "password" for name, _ in pairs):
            query = urlencode([(name, "***" if name.lower() == "password" else value)
                               for name, value in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    masked = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # urlunsplit drops the "//" of an empty netloc (unix:///path): put it back
    return masked if netloc else masked.replace(":", "://", 1)


class RedisGate:
    def __init__(self, url: str, *, prefix: str = "agentrt", timeout: float = 0.5,
                 retry_after: float = 1.0, cluster: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"{mask_url(url)!r} is not a redis://, rediss:// or unix:// URL",
                              field="AGENTRT_REDIS_URL")
        self.url = mask_url(url)
        self.prefix = prefix
        self.timeout = timeout
        self.retry_after = retry_after
        self.cluster = cluster
        self._clock = clock
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        # A pooled connection Redis closed (a restart) fails once: one immediate retry on
        # a fresh connection. Not on a timeout: a stalled Redis would cost it twice.
        single = {**options, "retry": Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))}
        self.client: Any = (RedisCluster.from_url(url, **options) if cluster
                            else aioredis.Redis.from_url(url, **single))
        # Cluster: classic PUBLISH reaches every node, so one plain connection to the seed
        # node hears every channel (redis-py's asyncio cluster pub/sub is not dependable).
        self._node: Any = (aioredis.Redis.from_url(url, socket_connect_timeout=timeout)
                           if cluster else None)
        self._down = False
        self._down_until = 0.0
        self._probing = False
        self.failures = 0
        # redis-py's async RedisCluster fetches the topology on first use, and
        # commands racing that first use can fail (AttributeError inside
        # redis-py 8.1): initialize once, under a lock, before any command.
        self._ready = not cluster
        self._init_lock = anyio.Lock()

    @property
    def available(self) -> bool:
        """False while the circuit is open (a recent failure). Once ``retry_after`` has
        passed, one caller at a time probes Redis; the others keep stepping aside."""
        return not self._down or (self._clock() >= self._down_until and not self._probing)

    async def run(self, op: Callable[[Any], Awaitable[T]], *, what: str,
                  timeout: float | None = None) -> T:
        """Runs ``op(client)``; raises BackendUnavailableError if Redis cannot answer."""
        if not self.available:
            raise BackendUnavailableError(f"redis at {self.url} is unavailable (circuit open)")
        probe = self._down
        self._probing = probe
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                if not self._ready:
                    await self._initialize()
                result = await op(self.client)
        except ResponseError as exc:
            if not isinstance(exc, _SERVER_TROUBLE):
                # The server answered: the data or the command was wrong (a foreign type
                # under a key, a script error). This call fails; Redis is not down.
                log.warning("redis.command_error", url=self.url, what=what,
                            error=f"{type(exc).__name__}: {exc}")
                raise BackendUnavailableError(f"redis at {self.url} refused {what}: "
                                              f"{type(exc).__name__}: {exc}") from exc
            self.trip(exc, what)
            raise BackendUnavailableError(f"redis at {self.url} failed during {what}: "
                                          f"{type(exc).__name__}: {exc}") from exc
        # RedisClusterException is not a RedisError: "no node reachable" is one.
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            self.trip(exc, what)
            raise BackendUnavailableError(f"redis at {self.url} failed during {what}: "
                                          f"{type(exc).__name__}: {exc}") from exc
        finally:
            if probe:
                self._probing = False
        if self._down:
            self._down = False
            log.warning("redis.recovered", url=self.url, what=what)
        return result

    async def _initialize(self) -> None:
        async with self._init_lock:
            if not self._ready:
                await self.client.initialize()
                self._ready = True

    def trip(self, exc: BaseException, what: str) -> None:
        """Open the circuit; warn only on the transition from up to down."""
        self.failures += 1
        if not self._down:
            log.warning("redis.unavailable", url=self.url, what=what,
                        error=f"{type(exc).__name__}: {exc}", retry_after=self.retry_after)
        self._down = True
        self._down_until = self._clock() + self.retry_after

    def pubsub(self) -> Any:
        """A pub/sub connection. Reads on it wait without the command timeout: callers
        bound their own waits (``get_message(timeout=...)``)."""
        return (self._node if self._node is not None else self.client).pubsub()

    @asynccontextmanager
    async def subscribed(self, channel: str) -> AsyncIterator[Any]:
        """A pub/sub connection subscribed to ``channel``, closed however the block ends."""
        pubsub = self.pubsub()
        try:
            await self.run(lambda r: pubsub.subscribe(channel), what="subscribe")
            yield pubsub
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await pubsub.aclose()
                except Exception as exc:  # closing a broken connection is not news
                    log.debug("redis.pubsub_close_failed", error=repr(exc))

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def aclose(self) -> None:
        for client in (self.client, self._node):
            if client is None:
                continue
            try:
                await client.aclose()
            except (RedisError, OSError) as exc:  # closing a dead connection is not an error
                log.debug("redis.close_failed", error=repr(exc))
