"""The runtime's one Redis connection pool, behind a circuit breaker.

Every Redis call in agentrt goes through :meth:`RedisGate.run`: bounded by a small
timeout, its failures translated to :class:`BackendUnavailableError`. The first
failure logs one ``redis.unavailable`` warning and opens the circuit: for
``retry_after`` seconds callers step aside at once (the in-process layers carry
on) instead of each waiting out a timeout. The next call after that probes Redis
again, and the first success logs ``redis.recovered``: no restart needed.

A circuit is for callers that can step aside (the caches); one that cannot (the
thread store) takes its own with :meth:`RedisGate.with_own_circuit`, on the same
connection pool, so that a cache read timing out never fails a thread write.

The URL may carry a password: only :func:`mask_url`'s form of it is ever kept,
logged or put in an error, and a URL that cannot be parsed is reported as
malformed without being echoed (a password with an unescaped ``/``, ``#`` or
``?`` is exactly such a URL, and redis-py's own error would quote it).

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

__all__ = ["RedisGate", "mask_url", "refused"]

log = get_logger("agentrt.redis")

# Errors in a reply that say the server itself is in trouble (so the circuit opens),
# as opposed to a reply refusing this one command.
_SERVER_TROUBLE = (ReadOnlyError, OutOfMemoryError, ClusterDownError, TryAgainError)
T = TypeVar("T")


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, rest)`` split at the *last* ``@``, or None without one.

    The last ``@``, not the one inside the authority as a parser finds it: a
    password holding an unescaped ``/``, ``#`` or ``?`` ends the authority early
    for a parser, which then shows the password as part of the path or query.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo, _, after = rest.rpartition("@")
    return scheme + sep, userinfo, after


def malformed_userinfo(url: str) -> bool:
    """True if the URL's user name or password holds an unescaped ``/``, ``?`` or
    ``#``, so a parser reads part of it as the path, query or fragment."""
    split = _userinfo(url)
    return split is not None and any(c in split[1] for c in "/?#")


def mask_url(url: str) -> str:
    """The URL without its secrets, for logs and errors: any password in the userinfo
    (the whole userinfo when it is not plainly ``user:password``) and any
    ``password=`` query value become ``***``."""
    split = _userinfo(url)
    if split is not None:
        head, userinfo, after = split
        user, colon, _ = userinfo.partition(":")
        # "user:***" when the user name is plainly one; else the whole userinfo goes
        plain = colon and not any(c in user for c in "/?#@")
        url = f"{head}{user + ':***' if plain else '***'}@{after}"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unparsable netloc ("[" unbalanced): show nothing after it
        return f"{url.partition('://')[0]}://***"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() == "password" for name, _ in pairs):
            query = urlencode([(name, "***" if name.lower() == "password" else value)
                               for name, value in pairs], safe="*")
    # a Redis URL has no use for a fragment: one is the rest of a value cut at a '#'
    fragment = "***" if parts.fragment else ""
    if (query, fragment) == (parts.query, parts.fragment):
        return url
    masked = urlunsplit((parts.scheme, parts.netloc, parts.path, query, fragment))
    # urlunsplit drops the "//" of an empty netloc (unix:///path): put it back
    return masked if parts.netloc else masked.replace(":", "://", 1)


def refused(exc: BackendUnavailableError) -> bool:
    """True if Redis answered and refused the command (bad data or script): retrying
    it cannot help, unlike a timeout or a lost connection."""
    cause = exc.__cause__
    return isinstance(cause, ResponseError) and not isinstance(cause, _SERVER_TROUBLE)


async def execute(pipe: Any, *, raise_on_error: bool = True) -> list[Any]:
    """Runs a redis-py pipeline and always gives its connection back. redis-py resets
    a pipeline in a ``finally``, but under an anyio cancel scope that reset is
    cancelled too, and the pipeline is collected still holding its connection (an
    unclosed session, and one connection fewer in the pool)."""
    try:
        return list(await pipe.execute(raise_on_error=raise_on_error))
    finally:
        with anyio.CancelScope(shield=True):
            await pipe.reset()


# Connections of one gate's pool. When all are busy, a command waits for one (within
# its timeout) instead of failing: redis-py's default pool raises MaxConnectionsError
# past 100, which 500 concurrent runs on the Redis thread store reached, and which
# then opened the circuit as if Redis were down.
MAX_CONNECTIONS = 100


class _Pool:
    """What every gate on one URL shares: the clients and the cluster's start-up."""

    def __init__(self, url: str, *, timeout: float, cluster: bool) -> None:
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if cluster:
            self.client: Any = RedisCluster.from_url(url, **options)
        else:
            # No socket timeouts of redis-py's own: every command runs inside the gate's
            # timeout, which also bounds its wait for a free connection (timeout=None),
            # and which a caller may lengthen (the thread store does: a socket timeout
            # of 0.5 s failed its commands whenever a busy event loop read the reply late)
            # A pooled connection Redis closed (a restart) fails once: one immediate retry
            # on a fresh connection. Not on a timeout: a stalled Redis would cost it twice.
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=MAX_CONNECTIONS, timeout=None,
                retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)))
            self.client = aioredis.Redis.from_pool(pool)
        # Cluster: classic PUBLISH reaches every node, so one plain connection to the seed
        # node hears every channel (redis-py's asyncio cluster pub/sub is not dependable).
        self.node: Any = (aioredis.Redis.from_url(url, socket_connect_timeout=timeout)
                          if cluster else None)
        # redis-py's async RedisCluster fetches the topology on first use, and
        # commands racing that first use can fail (AttributeError inside
        # redis-py 8.1): initialize once, under a lock, before any command.
        self.ready = not cluster
        self.init_lock = anyio.Lock()


def _malformed(url: str) -> ConfigError:
    return ConfigError(f"the URL is malformed (shown masked: {mask_url(url)!r}); check its "
                       "host and port, and percent-encode '/', '?', '#', '@' and ':' in its "
                       "user name and password (%2F, %3F, %23, %40, %3A)",
                       field="AGENTRT_REDIS_URL")


class RedisGate:
    def __init__(self, url: str, *, prefix: str = "agentrt", timeout: float = 0.5,
                 retry_after: float = 1.0, cluster: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            raise _malformed(url) from None
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"{mask_url(url)!r} is not a redis://, rediss:// or unix:// URL",
                              field="AGENTRT_REDIS_URL")
        if malformed_userinfo(url):
            raise _malformed(url)
        try:
            pool = _Pool(url, timeout=timeout, cluster=cluster)
        except ValueError:
            # redis-py's message quotes the part it could not read: the password, maybe
            raise _malformed(url) from None
        self._setup(pool, url=mask_url(url), prefix=prefix, timeout=timeout,
                    retry_after=retry_after, cluster=cluster, clock=clock, owner=True)

    def _setup(self, pool: _Pool, *, url: str, prefix: str, timeout: float,
               retry_after: float, cluster: bool, clock: Callable[[], float],
               owner: bool) -> None:
        self._pool = pool
        self.client = pool.client
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.retry_after = retry_after
        self.cluster = cluster
        self._clock = clock
        self._owner = owner
        self._down = False
        self._down_until = 0.0
        self._probing = False
        self.failures = 0

    def with_own_circuit(self, *, timeout: float | None = None,
                         retry_after: float | None = None) -> RedisGate:
        """A gate on this one's connection pool with a circuit of its own: this gate's
        failures do not open it, nor its failures this gate's. Closing it closes
        nothing (the pool stays this gate's)."""
        other = object.__new__(RedisGate)
        self._pool.client = self.client  # (a test may have swapped the client in)
        other._setup(self._pool, url=self.url, prefix=self.prefix,
                     timeout=self.timeout if timeout is None else timeout,
                     retry_after=self.retry_after if retry_after is None else retry_after,
                     cluster=self.cluster, clock=self._clock, owner=False)
        return other

    @property
    def available(self) -> bool:
        """False while the circuit is open (a recent failure). Once ``retry_after`` has
        passed, one caller at a time probes Redis; the others keep stepping aside."""
        return not self._down or (self._clock() >= self._down_until and not self._probing)

    async def run(self, op: Callable[[Any], Awaitable[T]], *, what: str,
                  timeout: float | None = None, step_aside: bool = True) -> T:
        """Runs ``op(client)``; raises BackendUnavailableError if Redis cannot answer.

        ``step_aside=False`` is for a caller that has nowhere else to go (the thread
        store): its call is sent even while the circuit is open (the circuit still
        records the outcome, and warns once per outage)."""
        if step_aside and not self.available:
            raise BackendUnavailableError(f"redis at {self.url} is unavailable (circuit open)")
        probe = self._down and step_aside
        if probe:
            self._probing = True
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                if not self._pool.ready:
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
        async with self._pool.init_lock:
            if not self._pool.ready:
                await self.client.initialize()
                self._pool.ready = True

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
        node = self._pool.node
        return (node if node is not None else self.client).pubsub()

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
        if not self._owner:
            return
        for client in (self.client, self._pool.node):
            if client is None:
                continue
            try:
                await client.aclose()
            except (RedisError, OSError) as exc:  # closing a dead connection is not an error
                log.debug("redis.close_failed", error=repr(exc))
