"""The admin API: a separate listener for operators (``[admin] listen``).

It reuses the native HTTP/1.1 server (:class:`~triogate.server.HTTP1Server`) with
its own request handler (:class:`AdminAPI`), so it has the same limits, timeouts
and parser hardening as the public listener. Every endpoint except the probes
needs ``Authorization: Bearer <[admin] token>`` (compared in constant time).

Built-in endpoints::

    GET  /            this list, and the plugins' endpoints, as JSON
    GET  /livez       liveness probe (no token)
    GET  /readyz      readiness probe (no token): 503 while draining
    GET  /status      version, uptime, config version, workers, pid, the last reload's outcome
    GET  /routes      the route table in match order, with each route's plugins
    GET  /upstreams   targets with health and circuit state
    GET  /plugins     installed plugins and the configured instances
    GET  /stats       per route requests, errors, rates, p50/p99 latency; upstream targets' live numbers
    GET  /ui/         the admin UI (static files, no token; the page asks for it)
    POST /reload      like SIGHUP: validate, then swap; 422 with the errors otherwise (every worker's
                      outcome with ``workers > 1``: the supervisor gathers them)
    POST /reload?dry_run=1
                      validate the file and say what a reload would change (secrets masked), applying nothing

Plugins add endpoints with the ``admin_routes`` hook by returning
:class:`AdminRoute` objects (``/metrics`` from the prometheus plugin, cache purges).

With ``workers > 1``, ``/stats``, ``/upstreams`` and ``/status`` show the whole gateway: the
answering worker merges the others' published numbers (:mod:`triogate.adminstats`).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from ._version import __version__
from .adminstats import GatewayStats
from .adminui import is_ui_path, serve_ui
from .config import MIN_TOKEN_LENGTH, Config, ConfigError, ListenerConfig, check_admin, load_config
from .configdiff import Change, diff_configs, format_changes
from .listeners import bind_socket
from .messages import Request, Response
from .pipeline import Pipeline
from .plugins import PluginRegistry, plugin_summary
from .problem import problem
from .proxy import new_request_id
from .reloadstate import ReloadState, worker_entry
from .routestats import RouteStats
from .runtime import Runtime
from .server import HTTP1Server
from .upstream import HTTPClient

__all__ = ["MIN_TOKEN_LENGTH", "AdminAPI", "AdminGateway", "AdminRoute", "check_admin", "start_admin"]

log = logging.getLogger("triogate.admin")
ADMIN_MAX_BODY = 1 << 20
PUBLIC_PATHS = frozenset({"/livez", "/readyz", "/ui/"})
#: what ``GET /`` says about each built-in endpoint
BUILTIN_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("GET", "/"): "this index of the admin endpoints",
    ("GET", "/livez"): "liveness probe",
    ("GET", "/readyz"): "readiness probe: 503 while draining",
    ("GET", "/status"): "version, uptime, config version, workers, pid, connections, the last reload's outcome",
    ("GET", "/routes"): "the route table in match order, with each route's plugins",
    ("GET", "/upstreams"): "targets with health and circuit state",
    ("GET", "/plugins"): "installed plugins and the configured instances",
    ("POST", "/reload"): "re-read the config file like SIGHUP: validate, then swap; 422 with the errors otherwise;"
                         " ?dry_run=1 validates and answers what would change, applying nothing",
    ("GET", "/stats"): "per route requests, errors, rates and p50/p99 latency; upstream targets' live numbers",
    ("GET", "/ui/"): "the admin UI (a web page; it asks for the token)",
}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@attrs.frozen
class AdminRoute:
    """An endpoint a plugin serves on the admin listener (return a list of them from ``admin_routes``).

    ``path`` is exact, or a template whose parameters are whole segments
    (``/cache/routes/{route}``). ``handler`` is ``async def handler(request, **params)``
    and returns a :class:`~triogate.Response`, a JSON-able value (200) or None (204).
    Every plugin route requires the admin token.
    """

    method: str = attrs.field(converter=str.upper)
    path: str
    handler: Callable[..., Awaitable[Any]]
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"admin route path must start with /, got {self.path!r}")
        if not re.fullmatch(r"[A-Z]+", self.method):
            raise ValueError(f"admin route method must be a method name, got {self.method!r}")


class _CompiledRoute:
    __slots__ = ("owner", "regex", "route")

    def __init__(self, route: AdminRoute, owner: str) -> None:
        self.route = route
        self.owner = owner
        pattern = "".join(
            f"(?P<{m.group(1)}>[^/]+)" if m else re.escape(part)
            for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", route.path)
            for m in [_PARAM.fullmatch(part)]
        )
        self.regex = re.compile(pattern) if "{" in route.path else None


class AdminGateway(Protocol):
    """What the admin API reads from the gateway it serves (:class:`~triogate.Gateway` provides it).

    The admin API is a front end: it sees the gateway only through this interface, and the
    gateway never imports the admin API (:mod:`triogate.serving` starts both).
    """

    config_path: Path | None
    registry: PluginRegistry
    runtime: Runtime
    draining: bool
    version: int
    worker: int
    reload_state: ReloadState | None
    route_stats: RouteStats
    last_reload: dict[str, Any] | None

    @property
    def config(self) -> Config: ...

    @property
    def pipeline(self) -> Pipeline: ...

    async def reload(self, config: Config | None = None) -> list[str]: ...


class _AdminCtx:
    """What the HTTP/1.1 server records about one admin request."""

    __slots__ = ("bytes_in", "bytes_out", "error", "request", "request_id", "started", "status")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.status = 0
        self.error: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.perf_counter()
        self.request_id = new_request_id()


class _ServerConfig:
    """The slice of config :class:`HTTP1Server` reads, with admin-sized body limits."""

    def __init__(self, config: Config) -> None:
        g = config.gateway
        self.gateway = attrs.evolve(g, limits=attrs.evolve(g.limits, max_body_bytes=ADMIN_MAX_BODY))


class AdminAPI:
    """The request handler of the admin listener (quacks like a Gateway for HTTP1Server)."""

    def __init__(self, gateway: AdminGateway, runtime: Runtime) -> None:
        self.gateway = gateway
        self.runtime = runtime
        self.config = _ServerConfig(gateway.config)
        self.bound: tuple[str, int] | None = None
        self._builtin: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("GET", "/"): self._index,
            ("GET", "/livez"): self._livez,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/status"): self._status,
            ("GET", "/routes"): self._routes,
            ("GET", "/upstreams"): self._upstreams,
            ("GET", "/plugins"): self._plugins,
            ("POST", "/reload"): self._reload,
            ("GET", "/stats"): self._stats,
            ("GET", "/ui/"): self._ui,
        }
        self.stats = GatewayStats(gateway, runtime)
        self._builtin_paths = {p for _, p in self._builtin}
        self._plugin_routes: list[_CompiledRoute] = []
        self._routes_for: Any = None

    @property
    def url(self) -> str:
        assert self.bound is not None, "admin listener not started"
        host, port = self.bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # ------------------------------------------------------------------ the HTTP1Server interface

    async def handle(self, request: Request) -> tuple[_AdminCtx, Response]:
        ctx = _AdminCtx(request)
        try:
            response = await self._dispatch(ctx, request)
        except Exception as exc:  # an admin handler failing is a 500, never a dead listener
            log.exception("admin %s %s failed [request_id=%s]", request.method, request.path, ctx.request_id)
            ctx.error = f"{type(exc).__name__}: {exc}"
            response = problem(500, "admin handler failed", request_id=ctx.request_id)
        response.headers.set("cache-control", "no-store")
        ctx.status = response.status
        return ctx, response

    async def finish(self, ctx: _AdminCtx) -> None:
        req = ctx.request
        level = logging.INFO if req.method not in ("GET", "HEAD") or ctx.status >= 400 else logging.DEBUG
        if ctx.request.path in PUBLIC_PATHS and ctx.status < 400:
            level = logging.DEBUG
        log.log(level, "admin %s %s -> %d (%s, %.1f ms)", req.method, req.path, ctx.status,
                req.client[0] if req.client else "-", (time.perf_counter() - ctx.started) * 1000)

    # ------------------------------------------------------------------ dispatch

    def _authorized(self, request: Request) -> bool:
        token = self.gateway.config.admin.token
        if not token or len(token) < MIN_TOKEN_LENGTH:
            return False  # fail closed (a reload removed the token)
        given = request.headers.get("authorization") or ""
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer":
            credential = ""
        return hmac.compare_digest(credential.strip().encode("utf-8", "surrogateescape"),
                                   token.encode("utf-8", "surrogateescape"))

    async def _dispatch(self, ctx: _AdminCtx, request: Request) -> Response:
        path, method = request.path, request.method
        if is_ui_path(path):  # static files, no data: no token
            return serve_ui(method, path, ctx.request_id)
        if path not in PUBLIC_PATHS and not self._authorized(request):
            has_auth = request.headers.get("authorization") is not None
            challenge = 'Bearer realm="triogate-admin"' + (', error="invalid_token"' if has_auth else "")
            return problem(401, "a valid admin bearer token is required", request_id=ctx.request_id,
                           headers=[("www-authenticate", challenge)])
        handler = self._builtin.get((method, path))
        if handler is not None:
            return await handler(request)
        allowed = sorted(m for m, p in self._builtin if p == path)
        if not allowed:
            found, allowed = self._match_plugin(method, path)
            if found is not None:
                compiled, params = found
                return await self._call_plugin(compiled, request, params)
        if allowed:
            return problem(405, f"{method} is not allowed on {path}", request_id=ctx.request_id,
                           headers=[("allow", ", ".join(allowed))])
        return problem(404, f"no admin endpoint {path}", request_id=ctx.request_id)

    def _match_plugin(self, method: str, path: str) -> tuple[tuple[_CompiledRoute, dict[str, str]] | None, list[str]]:
        allowed: list[str] = []
        for c in self.plugin_routes():
            if c.regex is None:
                params: dict[str, str] | None = {} if c.route.path == path else None
            else:
                m = c.regex.fullmatch(path)
                params = m.groupdict() if m else None
            if params is None:
                continue
            if c.route.method == method:
                return (c, params), []
            allowed.append(c.route.method)
        return None, sorted(set(allowed))

    async def _call_plugin(self, compiled: _CompiledRoute, request: Request, params: dict[str, str]) -> Response:
        result = await compiled.route.handler(request, **params)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(204)
        return Response.json(result)

    def plugin_routes(self) -> list[_CompiledRoute]:
        """Routes contributed through ``admin_routes`` by the current config's plugins (cached per config)."""
        pipeline = self.gateway.pipeline
        if self._routes_for is pipeline:
            return self._plugin_routes
        out: list[_CompiledRoute] = []
        seen: dict[tuple[str, str], str] = {}
        for owner, admin_routes in pipeline.hooks.admin_routes:
            try:
                routes = admin_routes(pipeline.services)
            except Exception:
                log.exception("plugin %s failed in admin_routes", owner)
                continue
            for route in routes or ():
                if not isinstance(route, AdminRoute):
                    log.error("plugin %s returned %r from admin_routes, expected triogate.AdminRoute", owner, route)
                    continue
                key = (route.method, route.path)
                if route.path in self._builtin_paths:
                    log.error("plugin %s: admin route %s %s clashes with a built-in endpoint; ignored",
                              owner, route.method, route.path)
                    continue
                if key in seen:
                    if seen[key].split("@")[0] != owner.split("@")[0]:
                        log.error("plugin %s: admin route %s %s is already served by %s; ignored",
                                  owner, route.method, route.path, seen[key])
                    continue  # several instances of one plugin: the first serves it
                seen[key] = owner
                out.append(_CompiledRoute(route, owner))
        self._plugin_routes = out
        self._routes_for = pipeline
        return out

    # ------------------------------------------------------------------ built-in endpoints

    async def _index(self, request: Request) -> Response:
        """Every endpoint (built-in, then the current config's plugins'), so ``GET /`` is not a 404."""
        endpoints = [{"method": m, "path": p, "token": p not in PUBLIC_PATHS, "description": BUILTIN_DESCRIPTIONS[m, p]}
                     for m, p in self._builtin]
        endpoints += [{"method": c.route.method, "path": c.route.path, "token": True,
                       "description": c.route.description, "plugin": c.owner} for c in self.plugin_routes()]
        return Response.json({"service": "triogate admin API", "version": __version__, "endpoints": endpoints})

    async def _livez(self, request: Request) -> Response:
        return Response.json({"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        if self.gateway.draining:
            return Response.json({"status": "draining"}, status=503)
        return Response.json({"status": "ready", "config_version": self.gateway.version})

    async def _status(self, request: Request) -> Response:
        rt = self.runtime
        cfg = self.gateway.config
        return Response.json(self.stats.status({
            "version": __version__,
            "pid": rt.pid,
            "worker": rt.worker,
            "workers": cfg.gateway.workers,
            "supervised": rt.supervised,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rt.started_at)),
            "uptime_seconds": round(time.time() - rt.started_at, 3),
            "config_version": rt.config_version,
            "config_source": cfg.source,
            "reloads": rt.reloads,
            "draining": rt.draining,
            "open_connections": rt.open_connections,
            "in_flight": rt.in_flight,
        }))

    async def _routes(self, request: Request) -> Response:
        router = self.gateway.pipeline.router
        rows = router.table()
        by_name = {r.name: r for r in router.routes}
        for row in rows:
            route = by_name.get(row["route"])
            row["plugins"] = list(route.chain.order) if route is not None and route.chain is not None else []
        return Response.json(rows)

    async def _upstreams(self, request: Request) -> Response:
        return Response.json(self.stats.upstreams())

    async def _stats(self, request: Request) -> Response:
        return Response.json(self.stats.stats())

    async def _ui(self, request: Request) -> Response:
        """Listed for ``GET /``; ``_dispatch`` serves every ``/ui`` path before the token check."""
        return serve_ui(request.method, request.path, new_request_id())

    async def _plugins(self, request: Request) -> Response:
        registry = self.gateway.registry
        installed = [plugin_summary(i) for i in sorted(registry.infos.values(), key=lambda i: i.name)]
        instances = [
            {"name": inst.name, "route": inst.route, "class": f"{type(inst).__module__}.{type(inst).__qualname__}"}
            for inst in self.gateway.pipeline.instances
        ]
        admin_routes = [{"method": c.route.method, "path": c.route.path, "plugin": c.owner,
                         "description": c.route.description} for c in self.plugin_routes()]
        return Response(200, [("content-type", "application/json")], json.dumps(
            {"installed": installed, "configured": instances, "admin_routes": admin_routes},
            separators=(",", ":"), default=str).encode())

    async def _reload(self, request: Request) -> Response:
        if _is_dry_run(request):
            return await self._dry_run()
        rid = new_request_id()
        if self.runtime.supervised:
            errors = await trio.to_thread.run_sync(self._validate_file)
            if errors:
                return problem(422, "the config file is invalid; the running config keeps serving",
                               request_id=rid, errors=errors)
            state = self.gateway.reload_state
            if state is None:  # no pid file, so no outcome to wait for
                os.kill(os.getppid(), signal.SIGHUP)
                log.info("admin: config valid, reload signalled to the supervisor")
                return Response.json({"status": "reloading", "workers": self.gateway.config.gateway.workers},
                                     status=202)
            reload_id = state.request_reload()  # the supervisor takes it with the SIGHUP
            os.kill(os.getppid(), signal.SIGHUP)  # the supervisor forwards it to every worker
            log.info("admin: config valid, reload %s signalled to the supervisor", reload_id)
            outcome = None
            with trio.move_on_after(self.gateway.config.gateway.timeouts.startup + 15.0):
                while (outcome := state.outcome(reload_id)) is None:
                    await trio.sleep(0.05)
            if outcome is None:
                return problem(504, "no outcome from the supervisor in time; see the gateway's log", request_id=rid)
            if not outcome["ok"]:
                return problem(422, "reload rejected; the running config keeps serving", request_id=rid,
                               errors=outcome["errors"], workers=outcome["workers"])
            return Response.json({"status": "reloaded", "workers": outcome["workers"]})
        log.info("admin: reload requested through the admin API")  # the gateway logs the outcome once
        errors = await self.gateway.reload()
        entry = worker_entry(self.gateway.worker, errors, self.gateway.version, rid)
        if errors:
            return problem(422, "reload rejected; the running config keeps serving", request_id=rid, errors=errors,
                           workers=[entry])
        return Response.json({"status": "reloaded", "config_version": self.gateway.version, "workers": [entry]})

    async def _dry_run(self) -> Response:
        """``POST /reload?dry_run=1``: validate the file a reload would read, and diff it against the running
        config. With workers, one worker answers: they read the same file and serve the same config."""
        rid = new_request_id()
        errors, changes = await trio.to_thread.run_sync(self._diff_file)
        if errors:
            return problem(422, "the config file is invalid; a reload would be refused", request_id=rid,
                           valid=False, errors=errors)
        source = self.gateway.config_path  # absolute: the CLI compares it with the file it was given
        return Response.json({"valid": True, "config_source": str(source.resolve()) if source else None,
                              "config_version": self.gateway.version,
                              "changes": [c.to_json() for c in changes], "text": format_changes(changes)})

    def _diff_file(self) -> tuple[list[str], list[Change]]:
        path = self.gateway.config_path
        if path is None:
            return ["no config file to reload from"], []
        registry = self.gateway.registry
        try:
            new = load_config(path, registry=registry)
            Pipeline(new, registry, HTTPClient())  # the plugins' own checks, as a reload makes them
        except ConfigError as exc:
            return [f"{exc.source}: {e}" for e in exc.errors], []
        return [], diff_configs(self.gateway.config, new, registry)

    def _validate_file(self) -> list[str]:
        path = self.gateway.config_path
        if path is None:
            return ["no config file to reload from"]
        try:
            Pipeline(load_config(path), self.gateway.registry, HTTPClient())
        except ConfigError as exc:
            return [f"{exc.source}: {e}" for e in exc.errors]
        return []


def _is_dry_run(request: Request) -> bool:
    values = request.query_params().get("dry_run") if request.query else None
    return bool(values) and values[-1].lower() not in ("0", "false", "no")


async def start_admin(
    nursery: trio.Nursery, gateway: AdminGateway, servers: list[Any], *, supervised: bool = False,
) -> AdminAPI | None:
    """Attach the listeners to ``gateway.runtime``, and serve the admin API if ``[admin] listen`` is set.

    Raises :class:`ConfigError` (the gateway refuses to start) when the admin settings are unsafe.
    With workers, each worker binds the admin address with SO_REUSEPORT; any of them answers.
    """
    runtime = gateway.runtime
    runtime.attach(servers, supervised=supervised)
    admin_cfg = gateway.config.admin
    if admin_cfg.listen is None:
        return None
    errors = check_admin(admin_cfg)
    if errors:
        raise ConfigError(errors, gateway.config.source)
    api = AdminAPI(gateway, runtime)
    listener_cfg = ListenerConfig(admin_cfg.listen)
    sock = trio.socket.from_stdlib_socket(bind_socket(listener_cfg, reuse_port=supervised))
    addr = sock.getsockname()
    api.bound = (addr[0], addr[1])
    server = HTTP1Server(api, listener_cfg)
    await nursery.start(server.run, trio.SocketListener(sock))
    nursery.start_soon(api.stats.run, name="admin stats")
    log.info("admin API on %s", api.url)
    return api
