"""The per-request context every hook receives, and the services of a loaded config."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .counters import Counter
from .messages import Principal, Request, Response
from .problem import problem
from .resources import SCOPES, Scope, SharedResources
from .runtime import Detached, Runtime

if TYPE_CHECKING:
    import trio

    from .clientcert import ClientCert
    from .config import Config, ConsumerConfig
    from .plugin import Plugin
    from .routing import Route, Router
    from .upstream import HTTPClient, Upstream

__all__ = ["Context", "GatewayServices"]

T = TypeVar("T")
P = TypeVar("P", bound="Plugin")


class GatewayServices:
    """What a plugin may use: the HTTP client, upstreams, consumers, config, logger, shared resources.

    One exists per loaded config (a reload makes a new one); ``http``, ``runtime`` and the
    ``"process"`` shared resources are the gateway's, the same across reloads, so pooled
    connections and process-wide state survive them.
    """

    def __init__(
        self,
        config: Config,
        http: HTTPClient,
        upstreams: dict[str, Upstream],
        *,
        version: int = 1,
        worker: int = 0,
        process: SharedResources | None = None,
        runtime: Runtime | None = None,
        forward: Callable[[Context], Awaitable[Response]] | None = None,
        outgoing: Callable[[Context], tuple[str, list[tuple[bytes, bytes]]]] | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.upstreams = upstreams
        self.consumers: dict[str, ConsumerConfig] = dict(config.consumers)
        self.version = version
        self.worker = worker
        self.log = logging.getLogger("triogate")
        self.nursery: trio.Nursery | None = None
        #: facts about the running gateway (connections, in-flight requests, reloads, upstream targets)
        self.runtime: Runtime = runtime if runtime is not None else Runtime(
            Detached(upstreams, version=version, worker=worker))
        self.router: Router | None = None  # set once every route is built
        self.plugins: list[Plugin] = []  # every configured instance of this config, global and per route
        # the core's bookkeeping behind shared(); plugins call shared()
        self.resources = SharedResources("config")
        self.process_resources = process if process is not None else SharedResources("process")
        # the upstream call of the pipeline that owns these services (None: services outside a pipeline)
        self._forward = forward
        self._outgoing = outgoing

    def instances(self, cls: type[P]) -> list[P]:
        """The configured instances (global and per route) of ``cls`` or a subclass, in config order."""
        return [p for p in self.plugins if isinstance(p, cls)]

    @overload
    async def shared(self, key: Hashable, factory: Callable[[], AbstractAsyncContextManager[T]], *,
                     scope: Scope = "config") -> T: ...

    @overload
    async def shared(self, key: Hashable, factory: Callable[[], T], *, scope: Scope = "config") -> T: ...

    async def shared(self, key: Hashable, factory: Callable[[], Any], *, scope: Scope = "config") -> Any:
        """One resource per ``key`` and ``scope``, shared by every caller; the core starts and closes it.

        ``factory()`` returns an async context manager (entered in the scope's nursery, exited
        when the scope ends) or the resource itself (its ``aclose()``, if any, awaited then).
        ``scope="config"`` lives as long as this loaded config (closed after a reload retired
        it and its requests finished); ``"process"`` until the gateway stops. Concurrent first
        callers wait for the one start; a factory that fails raises
        :class:`~triogate.SharedResourceError` and the next call tries again. Call it from
        ``startup`` (or a request hook), not from ``__init__``: a config being validated has
        no running scope. Prefix ``key`` with your distribution's name, e.g. ``("triogate_jwt", url)``.
        """
        if scope == "config":
            return await self.resources.get(key, factory)
        if scope == "process":
            return await self.process_resources.get(key, factory)
        raise ValueError(f"scope: expected one of {', '.join(SCOPES)}, got {scope!r}")

    async def forward(self, ctx: Context) -> Response:
        """Send ``ctx.request`` to ``ctx.route``'s upstream as the core does after the transform phase.

        Path rewrite, proxy headers, balancing and retries apply; the response body streams
        (close it). For plugins that call the upstream outside a request's own phases,
        e.g. a cache revalidating a stale response in the background.
        """
        if self._forward is None or ctx.route is None:
            raise RuntimeError("forward() needs a loaded pipeline and a routed context")
        return await self._forward(ctx)

    def upstream_request(self, ctx: Context) -> tuple[str, list[tuple[bytes, bytes]]]:
        """The request target (path and query) and headers the upstream call would send for ``ctx`` now.

        The route's rewrite or ``strip_prefix``, hop-by-hop removal, forwarding fields
        (``X-Forwarded-*``/``Forwarded``, ``Via``), the Host rule and the request id are applied,
        exactly as :meth:`forward` sends them -- for plugins that send a copy elsewhere (mirroring).
        """
        if self._outgoing is None or ctx.route is None:
            raise RuntimeError("upstream_request() needs a loaded pipeline and a routed context")
        return self._outgoing(ctx)

    def counter(self, name: str, help: str, labels: tuple[str, ...] | list[str] = ()) -> Counter:
        """A counter a metrics exporter shows (the prometheus plugin: at ``/metrics``), e.g.
        ``gateway.counter("triogate_mirror_requests_total", "Mirrored copies by result.", ("route", "result"))``.

        Declare it in ``__init__``; every instance (each route's, each reload's) asking for a name
        gets the same counter, so its counts add up and never go back. Label values must come
        from a small fixed set (route and upstream names, outcomes), never from a request.
        """
        return self.runtime.counters.counter(name, help, labels)

    def upstream(self, name: str) -> Upstream:
        try:
            return self.upstreams[name]
        except KeyError:
            raise KeyError(f"unknown upstream {name!r}") from None

    def credentials(self, plugin: str) -> dict[str, Any]:
        """``{consumer name: credentials table}`` for one plugin, from ``[consumers.*.credentials.<plugin>]``."""
        return {name: c.credentials[plugin] for name, c in self.consumers.items() if plugin in c.credentials}


class Context:
    """One request's journey through the phases.

    ``state`` is free per-request scratch space for plugins (key it by plugin name);
    ``log_extra`` is merged into the access-log line.
    """

    __slots__ = (
        "body_in",
        "bytes_in",
        "bytes_out",
        "challenges",
        "client_addr",
        "client_ip",
        "error",
        "gateway",
        "generation",
        "hook_timings",
        "log_extra",
        "params",
        "principal",
        "request",
        "request_id",
        "response",
        "rest",
        "route",
        "short_circuit",
        "started",
        "state",
        "status",
        "upstream",
        "upstream_name",
        "upstream_seconds",
        "upstream_started",
        "upstream_target",
    )

    def __init__(self, request: Request, gateway: GatewayServices, request_id: str, client_ip: str) -> None:
        self.request = request
        self.gateway = gateway
        self.request_id = request_id
        self.client_ip = client_ip
        self.client_addr = request.client[0] if request.client else client_ip
        self.route: Route | None = None
        self.params: dict[str, str] = {}
        self.rest = ""
        self.principal: Principal | None = None
        self.state: dict[str, Any] = {}
        self.challenges: list[str] = []
        self.started = time.perf_counter()
        #: the upstream this request goes to, when a plugin chose one (``use_upstream``); else the route's
        self.upstream: Upstream | None = None
        self.upstream_name: str | None = None
        self.upstream_target: str | None = None
        self.upstream_seconds: float | None = None
        # seconds after ``started`` when the upstream call began (``upstream_seconds`` is its duration)
        self.upstream_started: float | None = None
        # set to a list to have every hook call recorded as (plugin, phase, start, end) perf_counter
        # values -- only when a configured plugin class sets ``wants_hook_timings = True`` (tracing)
        self.hook_timings: list[tuple[str, str, float, float]] | None = None
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.short_circuit: tuple[str, str] | None = None
        self.error: str | None = None
        self.log_extra: dict[str, Any] = {}
        self.response: Response | None = None
        self.body_in = request.body  # the body as received, even if a plugin replaces request.body
        self.generation: Any = None  # the loaded config this request runs on (set by the Gateway)

    @property
    def client_cert(self) -> ClientCert | None:
        """The client certificate the TLS handshake verified (a listener with ``client_auth``), else None.

        HTTP/2 requests (the h2 listener) never carry one: hypercorn does not expose it.
        """
        return self.request.tls_client_cert

    @property
    def route_name(self) -> str | None:
        return self.route.name if self.route is not None else None

    def use_upstream(self, name: str) -> None:
        """Send this request to upstream ``name`` instead of the route's (canary splits, fallbacks).

        The chosen upstream keeps its own pools, balancer, health checks, circuit breaker and
        retries; the access log and metrics name it (``upstream_name``). Path rewriting and
        proxy headers are the route's. An unknown name raises ``KeyError``.
        """
        self.upstream = self.gateway.upstream(name)

    def problem(self, status: int, detail: str | None = None, **kwargs: Any) -> Response:
        """A problem+json response carrying this request's id."""
        return problem(status, detail, request_id=self.request_id, **kwargs)

    def challenge(self, value: str) -> None:
        """Record a ``WWW-Authenticate`` challenge from an auth plugin that did not authenticate.

        After the auth phase, if no plugin set ``ctx.principal``, the core answers 401
        with every recorded challenge (so several auth plugins on a route are an OR).
        """
        if value not in self.challenges:
            self.challenges.append(value)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __repr__(self) -> str:
        return f"<Context {self.request_id} {self.request.method} {self.request.path}>"
