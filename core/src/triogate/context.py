"""The per-request context every hook receives, and the services of a loaded config."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .messages import Principal, Request, Response
from .problem import problem

if TYPE_CHECKING:
    import trio

    from .config import Config, ConsumerConfig
    from .routing import Route
    from .upstream import HTTPClient, Upstream

__all__ = ["Context", "GatewayServices"]


class GatewayServices:
    """What a plugin may use: the HTTP client, upstreams, consumers, config, logger.

    One exists per loaded config (a reload makes a new one); ``http`` is shared
    across reloads so pooled connections survive them.
    """

    def __init__(
        self,
        config: Config,
        http: HTTPClient,
        upstreams: dict[str, Upstream],
        *,
        version: int = 1,
        worker: int = 0,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.upstreams = upstreams
        self.consumers: dict[str, ConsumerConfig] = dict(config.consumers)
        self.version = version
        self.worker = worker
        self.log = logging.getLogger("triogate")
        self.nursery: trio.Nursery | None = None
        # shared registry for plugins that offer something to other plugins
        # (e.g. a metrics registry); keys are plugin names.
        self.extras: dict[str, Any] = extras if extras is not None else {}
        self.router: Any = None
        self.plugins: list[Any] = []
        self._forward: Any = None  # set by the pipeline that owns these services

    async def forward(self, ctx: Context) -> Response:
        """Send ``ctx.request`` to ``ctx.route``'s upstream as the core does after the transform phase.

        Path rewrite, proxy headers, balancing and retries apply; the response body streams
        (close it). For plugins that call the upstream outside a request's own phases,
        e.g. a cache revalidating a stale response in the background.
        """
        if self._forward is None or ctx.route is None:
            raise RuntimeError("forward() needs a loaded pipeline and a routed context")
        return await self._forward(ctx)

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
    def route_name(self) -> str | None:
        return self.route.name if self.route is not None else None

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
