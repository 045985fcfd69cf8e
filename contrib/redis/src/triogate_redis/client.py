"""``RedisClient``: one self-healing coredis connection pool on trio, with a health state.

coredis 6 runs on anyio, so it runs on trio unchanged. Its client must be used as
an async context manager entered by a long-lived task; ``RedisClient`` owns that
task (started in a gateway nursery), PINGs Redis every ``health_check_interval``
and rebuilds the client after a failure with a capped backoff.

Calls never wait on a Redis that is known to be down: while the state is not
``"up"`` they raise :class:`RedisUnavailable` at once, and every call is bounded
by ``timeout``. A failed call marks the state ``"down"`` and wakes the monitor,
which PINGs straight away and flips back to ``"up"`` when Redis answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio
import coredis
import trio
from coredis.connection import TCPLocation
from coredis.exceptions import (
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    SentinelError,
    TryAgainError,
)
from coredis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from coredis.retry import ConstantRetryPolicy, NoRetryPolicy

from .config import RedisConfig, parse_hostport
from .scripts import LuaScript

if TYPE_CHECKING:
    from triogate import GatewayServices

__all__ = ["RedisClient", "RedisUnavailable", "build_client", "running_client", "shared_client"]

log = logging.getLogger("triogate.redis")

T = TypeVar("T")

#: errors that mean "Redis is not usable right now" (as opposed to a bug in a script or command)
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError, ClusterDownError, TryAgainError, ReadOnlyError, SentinelError, TimeoutError, OSError,
    anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, trio.TooSlowError,
    trio.BrokenResourceError, trio.ClosedResourceError,
)


class RedisUnavailable(Exception):
    """Redis could not answer (down, unreachable, too slow, failing over)."""


class PrimaryMoved(Exception):
    """Sentinel names another primary than the one this session writes to: reconnect."""


def build_client(config: RedisConfig) -> Any:
    """A fresh (not yet entered) coredis client for ``config``; returns ``(client, outer_context_or_None)``."""
    common: dict[str, Any] = {
        "connect_timeout": config.connect_timeout,
        "stream_timeout": config.timeout,
        "max_connections": config.max_connections,
    }
    if config.mode == "standalone":
        return coredis.Redis.from_url(config.url, retry_policy=NoRetryPolicy(), pool_timeout=config.timeout,
                                      **common), None
    parts = urlsplit(config.url)
    auth: dict[str, Any] = {}
    if parts.username:
        auth["username"] = unquote(parts.username)
    if parts.password:
        auth["password"] = unquote(parts.password)
    tls = parts.scheme == "rediss"
    if config.mode == "cluster":
        nodes = [TCPLocation(*parse_hostport(n)) for n in config.cluster_nodes]
        # redirections (MOVED/ASK) are handled by coredis; retry only "cluster is busy" answers, never
        # a connection error after a script may have run (that could count a decision twice)
        policy = ConstantRetryPolicy((ClusterDownError, TryAgainError), retries=2, delay=0.05)
        return coredis.RedisCluster(startup_nodes=nodes, ssl=tls, retry_policy=policy,
                                    pool_timeout=config.timeout, **auth, **common), None
    db = 0
    path = parts.path.strip("/")
    if path.isdigit():
        db = int(path)
    sentinel = coredis.Sentinel(
        [TCPLocation(*parse_hostport(n)) for n in config.sentinels],
        sentinel_kwargs={"connect_timeout": config.connect_timeout, "stream_timeout": config.timeout},
        retry_policy=NoRetryPolicy(),
    )
    primary = sentinel.primary_for(config.sentinel_service, db=db, ssl_context=_ssl_context() if tls else None,
                                   **auth, **common)
    return primary, sentinel


def _ssl_context() -> Any:
    import ssl

    return ssl.create_default_context()


class RedisClient:
    """A Redis connection pool that reconnects by itself and knows whether Redis is healthy.

    ``state`` is ``"idle"`` (not started), ``"connecting"``, ``"up"`` or ``"down"``;
    ``healthy`` is ``state == "up"``. Use :meth:`call` or :meth:`run_script`; both raise
    :class:`RedisUnavailable` when Redis cannot answer within ``config.timeout``.
    """

    def __init__(self, config: RedisConfig, *, name: str = "redis") -> None:
        self.config = config
        self.name = name
        self.state = "idle"
        self.last_error: str | None = None
        #: counters: connects (successful), failures (failed calls/pings), unavailable (calls refused while down)
        self.stats = {"connects": 0, "failures": 0, "unavailable": 0}
        self._client: Any = None
        self._wake = trio.Event()
        self._changed = trio.Event()
        self._started = False
        self._stopped = False
        self._cancel: trio.CancelScope | None = None
        self._backoff = 0.05

    # ------------------------------------------------------------------ state

    @property
    def healthy(self) -> bool:
        return self.state == "up"

    @property
    def client(self) -> Any:
        """The live coredis client, or None while not connected (prefer :meth:`call`)."""
        return self._client if self.state == "up" else None

    def key(self, *parts: str) -> str:
        """``key_prefix`` + parts joined with ``:``."""
        return self.config.key_prefix + ":".join(parts)

    def _set_state(self, state: str, error: BaseException | str | None = None) -> None:
        if error is not None:
            self.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if state == self.state:
            return
        previous, self.state = self.state, state
        if state == "up":
            log.info("redis %s: %s (%s)", self.name, "reconnected" if previous == "down" else "connected",
                     self.config.describe())
        elif state == "down":
            log.warning("redis %s: unavailable (%s): %s", self.name, self.config.describe(), self.last_error)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_state(self, state: str, timeout: float) -> bool:
        """Wait until ``state`` is reached (True) or ``timeout`` passes (False)."""
        with trio.move_on_after(timeout):
            while self.state != state:
                await self._changed.wait()
            return True
        return False

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the connection task in ``nursery`` (idempotent).

        Returns once the first connection attempt has finished, successfully or not, so
        a gateway starts (and serves, degraded) even while Redis is down.
        """
        if self._started:
            return
        self._started = True
        await nursery.start(self._run)

    def stop(self) -> None:
        """Close the pool; calls raise :class:`RedisUnavailable` afterwards."""
        self._stopped = True
        if self._cancel is not None:
            self._cancel.cancel()

    async def _run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        started = False

        def report_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        with trio.CancelScope() as self._cancel:
            try:
                self._set_state("connecting")
                while not self._stopped:
                    client, outer = build_client(self.config)
                    try:
                        await self._session(client, outer, report_started)
                    except Exception as exc:  # noqa: BLE001 - any failure means "down, retry later"
                        self.stats["failures"] += 1
                        self._set_state("down", _unwrap(exc))
                    finally:
                        self._client = None
                    report_started()
                    with trio.move_on_after(self._backoff):
                        await self._wake_wait()
                    self._backoff = min(self._backoff * 2, self.config.health_check_interval)
            finally:
                self._client = None
                self.state = "down"
                self.last_error = self.last_error or "stopped"

    async def _session(self, client: Any, outer: Any, report_started: Callable[[], None], *,
                       sentinel: Any = None) -> None:
        """Enter the client (and sentinel manager), PING, then PING every interval until one fails.

        With Sentinel, every check also asks the sentinels where the primary is: after a failover the
        old primary keeps accepting writes on the pooled connections until Sentinel turns it into a
        replica (seconds later), and those writes are then lost; a moved primary ends the session, so
        the client reconnects to the new one within ``health_check_interval``.
        """
        if outer is not None:
            async with outer:
                await self._session(client, None, report_started, sentinel=outer)
            return
        ping_timeout = self.config.connect_timeout + self.config.timeout
        async with client:
            with trio.fail_after(ping_timeout):
                await client.ping()
                primary = await self._sentinel_primary(sentinel)
            self._client = client
            self._backoff = 0.05
            self.stats["connects"] += 1
            self._set_state("up")
            report_started()
            try:
                while True:
                    with trio.move_on_after(self.config.health_check_interval):
                        await self._wake_wait()
                    with trio.fail_after(ping_timeout):
                        await client.ping()
                        now = await self._sentinel_primary(sentinel)
                    if now != primary:
                        raise PrimaryMoved(f"sentinel: primary of {self.config.sentinel_service!r} moved from "
                                           f"{primary[0]}:{primary[1]} to {now[0]}:{now[1]}")
                    self._set_state("up")
            finally:
                self._client = None

    async def _sentinel_primary(self, sentinel: Any) -> tuple[str, int]:
        """Where the sentinels say the primary is (``("", 0)`` outside Sentinel mode)."""
        if sentinel is None:
            return "", 0
        host, port = await sentinel.discover_primary(self.config.sentinel_service)
        return str(host), int(port)

    async def _wake_wait(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()

    def report_failure(self, exc: BaseException | str) -> None:
        """Mark Redis down after a failed call and have the monitor check it now."""
        self.stats["failures"] += 1
        self._set_state("down", exc)
        self._wake.set()

    # ------------------------------------------------------------------ calls

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T:
        """``await fn(client, *args)`` bounded by ``timeout`` (default ``config.timeout``).

        Raises :class:`RedisUnavailable` at once while Redis is not up, and when the call
        fails with a connection-level error or takes too long. Other Redis errors
        (a wrong command, a script error) propagate unchanged: they are bugs, not outages.
        """
        client = self._client
        if client is None or self.state != "up":
            self.stats["unavailable"] += 1
            raise RedisUnavailable(self.last_error or f"redis {self.state}")
        try:
            with trio.fail_after(self.config.timeout if timeout is None else timeout):
                return await fn(client, *args)
        except UNAVAILABLE_ERRORS as exc:
            self.report_failure(exc)
            raise RedisUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except BaseExceptionGroup as group:
            match, rest = group.split(UNAVAILABLE_ERRORS)
            if match is not None and rest is None:
                self.report_failure(_unwrap(match))
                raise RedisUnavailable(str(_unwrap(match))) from group
            if self._client is not client:
                raise RedisUnavailable(f"reconnecting: {_unwrap(group)}") from group
            raise
        except Exception as exc:
            # the session ended under this call (a failed health check, a moved Sentinel primary):
            # coredis then fails it with "pool ... has exited", an outage rather than a bug
            if self._client is not client:
                raise RedisUnavailable(f"reconnecting: {type(exc).__name__}: {exc}") from exc
            raise

    async def run_script(self, script: LuaScript, keys: Sequence[str | bytes], args: Sequence[Any],
                         *, timeout: float | None = None) -> Any:
        """Run ``script`` atomically on the server (EVALSHA, falling back to EVAL once per server)."""
        return await self.call(_eval, script, list(keys), list(args), timeout=timeout)

    def __repr__(self) -> str:
        return f"<RedisClient {self.name} {self.config.describe()} {self.state}>"


async def _eval(client: Any, script: LuaScript, keys: list[Any], args: list[Any]) -> Any:
    try:
        return await client.evalsha(script.sha, keys=keys, args=args)
    except NoScriptError:
        return await client.eval(script.source, keys=keys, args=args)


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# ---------------------------------------------------------------------------- sharing


@asynccontextmanager
async def running_client(config: RedisConfig, *, name: str = "redis") -> AsyncIterator[RedisClient]:
    """A started :class:`RedisClient` (first connection attempt done), stopped on exit.

    Its connection task runs in a nursery of its own, so the client lives exactly as long as
    the ``async with`` block (or the shared-resource scope that entered it).
    """
    client = RedisClient(config, name=name)
    async with trio.open_nursery() as nursery:
        await client.start(nursery)
        try:
            yield client
        finally:
            client.stop()


async def shared_client(gateway: GatewayServices, config: RedisConfig, *, name: str = "redis") -> RedisClient:
    """The started :class:`RedisClient` for ``config``, shared by every plugin instance of one loaded config.

    ``gateway`` is the plugin's ``GatewayServices``; call this in ``startup``. The client is a
    ``"config"``-scoped shared resource: it returns after the first connection attempt (so the
    gateway starts, degraded, while Redis is down) and closes after a reload has retired the
    config and its requests finished, or when the gateway stops. The first caller's ``name``
    labels its log lines.
    """
    return await gateway.shared(("triogate_redis", config.identity), lambda: running_client(config, name=name))
