"""The request pipeline of one loaded config: routing, plugin phases, the upstream call.

It knows nothing about how bytes arrived; the native listener and the ASGI app
both build a :class:`~triogate.Request` and call :meth:`Pipeline.handle`.
Per route, the ordered hook functions of every phase are computed once at load.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import attrs
import pluggy
import trio

from .admission import RESERVED_REQUEST_HEADERS, Admission
from .config import Config, ConfigError, _path_join, underscore_error
from .context import Context, GatewayServices
from .headers import Headers
from .messages import BodyTooLarge, Request, Response
from .plugin import Plugin
from .plugins import (
    PHASES,
    PluginRegistry,
    SkipPlugin,
    check_hook_functions,
    check_plugin_tables,
    load_hook_module,
    make_plugin_manager,
    plugin_config,
)
from .problem import GatewayError
from .proxy import TrustedProxies, forward_request_headers, new_request_id, strip_hop_by_hop, valid_request_id
from .resources import SharedResources
from .routing import PathPolicy, Route, Router, strip_matrix_params, tail_segments
from .runtime import Runtime
from .upstream import HTTPClient, Upstream
from .upstream.tls import TLSFileError

__all__ = ["Chain", "ClientError", "Pipeline"]

log = logging.getLogger("triogate")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
Hook = tuple[str, Any]


class ClientError(GatewayError):
    """The client sent something malformed mid-request (e.g. a bad chunk): 400."""

    status = 400


@attrs.define
class Chain:
    """The ordered hook functions of each phase for one route (or for no route)."""

    pre_route: list[Hook] = attrs.Factory(list)
    auth: list[Hook] = attrs.Factory(list)
    transform: list[Hook] = attrs.Factory(list)
    post_response: list[Hook] = attrs.Factory(list)
    log: list[Hook] = attrs.Factory(list)
    order: list[str] = attrs.Factory(list)


@attrs.define
class _Use:
    name: str
    obj: Any
    priority: int
    scope: str  # "global", "route" or "hooks"


class Pipeline:
    """Everything built from one config: upstreams, plugin instances, routes and their chains."""

    def __init__(
        self,
        config: Config,
        registry: PluginRegistry,
        http: HTTPClient,
        *,
        version: int = 1,
        worker: int = 0,
        process: SharedResources | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.config = config
        errors: list[str] = []
        base = Path(config.source).parent if config.source and not config.source.startswith("<") else Path.cwd()
        self.upstreams: dict[str, Upstream] = {}
        self.warnings: list[str] = []  # deprecated keys in use: printed by check, logged at load and reload
        for name, ucfg in config.upstreams.items():
            self.warnings.extend(ucfg.deprecations(_key("upstreams", name)))
            try:  # builds the TLS context: reads the tls files again (they may have changed since parsing)
                self.upstreams[name] = Upstream(name, ucfg, config.gateway.http1_parser, base)
            except TLSFileError as exc:
                errors.append(f"{_key('upstreams', name)}.tls.{exc.field}: {exc}")
        self.services = GatewayServices(config, http, self.upstreams, version=version, worker=worker,
                                        process=process, runtime=runtime)
        self.pm: pluggy.PluginManager = make_plugin_manager()
        self.instances: list[Plugin] = []
        gcfg = config.gateway
        self.trusted = TrustedProxies(gcfg.trusted_proxies)
        self.forward_mode = gcfg.forwarded_headers
        self.via = b"triogate" if gcfg.via else None
        self.request_id_header = gcfg.request_id_header.lower()
        self._rid_header_b = self.request_id_header.encode("latin-1")
        self.max_body = gcfg.limits.max_body_bytes
        self.path_policy = PathPolicy(gcfg.paths.encoded_slash, gcfg.paths.trailing_dot)
        self.body_buffer = gcfg.limits.body_buffer_bytes
        self.skipped: list[str] = []  # plugins left out with plugins_on_error = "skip"
        self._identity: set[str] = set()  # headers declared by plugin instances (Plugin.identity_headers)
        self._route_uses: dict[str, list[_Use]] = {}

        on_error = gcfg.plugins_on_error
        errors.extend(check_plugin_tables(config, registry))
        global_uses = [u for name, raw in config.plugins.items()
                       if (u := self._instantiate(registry, name, raw, None, _key("plugins", name), on_error, errors))]
        hook_modules: list[tuple[str, str, Any]] = []
        for i, spec in enumerate(gcfg.hooks):
            try:
                hook_modules.append((f"gateway.hooks[{i}]", f"hooks:{spec}", load_hook_module(spec, base)))
            except Exception as exc:  # noqa: BLE001 - reported with its key path
                errors.append(f"gateway.hooks[{i}]: cannot load {spec!r}: {type(exc).__name__}: {exc}")
        hook_modules.extend((f"hook module {m.__name__}", f"hooks:{m.__name__}", m) for m in registry.hook_modules)
        for label, spec_name, module in hook_modules:
            priority = getattr(module, "PRIORITY", 0)
            if type(priority) is not int:
                errors.append(f"{label}: PRIORITY must be an integer, got {priority!r}")
                continue
            problems = check_hook_functions(module, label)
            if problems:
                errors.extend(problems)
                continue
            try:
                self.pm.register(module, name=spec_name)
            except Exception as exc:  # noqa: BLE001 - pluggy validation: unknown hook argument, duplicate
                errors.append(f"{label}: {exc}")
                continue
            declared = getattr(module, "IDENTITY_HEADERS", ())
            errors.extend(self._declare(f"{label}: IDENTITY_HEADERS", declared))
            global_uses.append(_Use(spec_name, module, priority, "hooks"))

        routes: list[Route] = []
        for rname, rcfg in config.routes.items():
            route = Route(rname, rcfg)
            route.upstream = self.upstreams.get(rcfg.upstream) if rcfg.upstream else None
            route_uses = [u for pname, raw in rcfg.plugins.items()
                          if (u := self._instantiate(registry, pname, raw, rname,
                                                     _key("routes", rname, "plugins", pname), on_error, errors))]
            overridden = {u.name for u in route_uses}
            uses = [u for u in global_uses if u.name not in overridden] + route_uses
            route.data["uses"] = uses
            routes.append(route)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            errors.append(f"plugins: {exc}")
        if errors:
            raise ConfigError(list(dict.fromkeys(errors)), config.source)

        self.admission = Admission(self._identity, gcfg.underscores_in_headers)
        self.global_uses = global_uses
        # a plugin asking for hook timings (tracing) makes every hook call timed when ctx.hook_timings is a list
        self.timed = any(getattr(type(i), "wants_hook_timings", False) for i in self.instances)
        for route in routes:
            route.chain = self._chain(route.data.pop("uses"), route.config.priorities)
        self.global_chain = self._chain(global_uses, {}, for_route=False)
        # lifecycle hooks of every instance and hook module: startup high→low priority
        every = global_uses + [u for uses in (self._route_uses.values()) for u in uses]
        self.lifecycle = sorted(every, key=lambda u: -u.priority)
        self.router = Router(routes)
        self.services.router = self.router
        self.services.plugins = self.instances
        self.services._forward = self.forward

    # ------------------------------------------------------------------ building

    def _instantiate(
        self, registry: PluginRegistry, name: str, raw: Any, route: str | None, path: str, on_error: str,
        errors: list[str],
    ) -> _Use | None:
        try:
            conf, priority = plugin_config(registry, name, raw, path, on_error)
        except ConfigError:
            return None  # already reported by check_plugin_tables
        except SkipPlugin as exc:
            self.skipped.append(str(exc))  # the Gateway logs these when it loads this config
            return None
        info = registry.get(name)
        assert info is not None and info.cls is not None
        try:
            inst = info.cls(conf, self.services, route)
        except (ValueError, TypeError) as exc:
            errors.append(f"{path}: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a plugin failing to build is a config error, not a traceback
            errors.append(f"{path}: plugin {name!r} failed to initialize: {type(exc).__name__}: {exc}")
            return None
        inst.name = name
        problems = check_hook_functions(inst, path)
        try:
            problems += self._declare(path, inst.identity_headers())
            problems += self._read_names(path, inst.request_header_names())
        except Exception as exc:  # noqa: BLE001 - a plugin's declaration failing is a config error
            problems.append(f"{path}: plugin {name!r} failed to declare its headers: {type(exc).__name__}: {exc}")
        if problems:
            errors.extend(problems)
            return None
        try:
            self.pm.register(inst, name=f"{name}@{route or '*'}")
        except Exception as exc:  # noqa: BLE001 - pluggy validation (unknown hook argument, ...)
            errors.append(f"{path}: plugin {name!r}: {exc}")
            return None
        self.instances.append(inst)
        use = _Use(name, inst, priority, "route" if route else "global")
        if route is not None:
            self._route_uses.setdefault(route, []).append(use)
        return use

    def _declare(self, path: str, names: Any) -> list[str]:
        """Record the identity headers an instance asserts; errors for names it cannot assert."""
        problems = []
        for header in names:
            if not isinstance(header, str) or not _TOKEN.fullmatch(header):
                problems.append(f"{path}: identity header {header!r} is not a header name")
            elif header.lower() in RESERVED_REQUEST_HEADERS or header.lower() == self.request_id_header:
                problems.append(f"{path}: {header!r} cannot be an identity header: clients send it, and it would be"
                                " removed from every request")
            else:
                self._identity.add(header.lower())
        return problems

    def _read_names(self, path: str, names: Any) -> list[str]:
        """Errors for request headers an instance reads that can never arrive (``_`` in the name)."""
        mode = self.config.gateway.underscores_in_headers
        if mode == "allow":
            return []
        return [underscore_error(f"{path}.{key}", header, mode) for key, header in names if "_" in header]

    def _chain(self, uses: list[_Use], overrides: dict[str, int], *, for_route: bool = True) -> Chain:
        ordered = sorted(uses, key=lambda u: -overrides.get(u.name, u.priority))
        chain = Chain(order=[u.name for u in ordered])
        for phase in PHASES:
            spec_args = ("ctx", "response") if phase == "post_response" else ("ctx",)
            impls = {id(i.plugin): _adapt(i, spec_args) for i in getattr(self.pm.hook, phase).get_hookimpls()}
            hooks = [(u.name, impls[id(u.obj)]) for u in ordered if id(u.obj) in impls]
            if phase == "pre_route" and for_route:
                # global pre_route hooks run before routing (global chain); a route's chain keeps only its own
                hooks = [(u.name, impls[id(u.obj)]) for u in ordered if id(u.obj) in impls and u.scope == "route"]
            if phase == "post_response":
                hooks.reverse()  # onion: the innermost (lowest priority) sees the response first
            if self.timed:
                hooks = [(name, _timed(name, phase, fn)) for name, fn in hooks]
            setattr(chain, phase, hooks)
        return chain

    # ------------------------------------------------------------------ requests

    def context(self, request: Request) -> Context:
        headers = request.headers
        peer = request.client[0] if request.client else "0.0.0.0"
        client_ip = self.trusted.client_ip(peer, headers) if self.trusted else peer
        rid = headers.get(self.request_id_header)
        if not valid_request_id(rid):
            rid = new_request_id()
        return Context(request, self.services, rid, client_ip)  # type: ignore[arg-type]

    async def handle(self, ctx: Context) -> Response:
        """Run every phase and the upstream call; never raises."""
        resp = await self._phases(ctx)
        route = ctx.route
        chain = route.chain if route is not None else self.global_chain
        for name, fn in chain.post_response:
            try:
                replaced = await fn(ctx, resp)
            except Exception as exc:  # noqa: BLE001 - a failing plugin answers 500, the gateway lives on
                await resp.body.aclose()
                resp = self._plugin_failed(ctx, name, "post_response", exc)
                continue
            if replaced is not None and not isinstance(replaced, Response):
                await resp.body.aclose()
                resp = self._plugin_failed(ctx, name, "post_response", TypeError(
                    f"post_response returned {type(replaced).__name__}, expected a triogate.Response or None"))
                continue
            if replaced is not None and replaced is not resp:
                if replaced.body is not resp.body:
                    await resp.body.aclose()
                resp = replaced
        resp.headers.set(self.request_id_header, ctx.request_id)
        ctx.status = resp.status
        ctx.response = resp
        return resp

    async def _phases(self, ctx: Context) -> Response:
        name = ""
        phase = "pre_route"
        refused = self.admission.admit(ctx.request.headers)
        if refused is not None:  # before any plugin: nothing refused here ever reaches one, or an upstream
            ctx.short_circuit = ("core", "admission")
            ctx.error = refused
            return ctx.problem(400, refused, headers=[("connection", "close")])
        try:
            for name, fn in self.global_chain.pre_route:
                r = await fn(ctx)
                if r is not None:
                    return _answered(ctx, name, phase, r)
            req = ctx.request
            name = ""
            refused, view = self.path_policy.screen(req.path)
            if refused is not None:
                return ctx.problem(400, f"bad path: {refused}")
            if "%" in req.host:  # an upstream could decode it into another name than routes matched
                return ctx.problem(400, "percent-encoded Host")
            route, params, rest = self.router.match(req.method, req.host, view, req.headers)
            if route is None:
                if params.get("__method_mismatch"):
                    return ctx.problem(405, "method not allowed on this route",
                                       headers=[("allow", params["__method_mismatch"])])
                return ctx.problem(404, "no route matches this request")
            if view is not req.path:  # ";" path parameters: matched without them, forwarded with them
                if not route.matrix_params:
                    return ctx.problem(400, "bad path: ';' path parameters are not allowed on this route"
                                            " (allow_matrix_params)")
                rest = tail_segments(req.path, rest.count("/"))
            ctx.route = route
            ctx.params = params
            ctx.rest = rest
            chain = route.chain
            for name, fn in chain.pre_route:
                r = await fn(ctx)
                if r is not None:
                    return _answered(ctx, name, phase, r)
            phase = "auth"
            for name, fn in chain.auth:
                r = await fn(ctx)
                if r is not None:
                    return _answered(ctx, name, phase, r)
            name = ""
            if ctx.principal is None and ctx.challenges:
                ctx.short_circuit = ("core", "auth")
                return ctx.problem(401, "authentication required",
                                   headers=[("www-authenticate", c) for c in ctx.challenges])
            phase = "transform"
            for name, fn in chain.transform:
                r = await fn(ctx)
                if r is not None:
                    return _answered(ctx, name, phase, r)
            name = ""
            phase = "upstream"
            return await self.forward(ctx)
        except GatewayError as exc:
            if name:
                ctx.error = f"{name}: {exc.detail}"
            return exc.to_response(ctx.request_id)
        except BodyTooLarge as exc:
            return ctx.problem(413, f"request body larger than {exc.limit} bytes",
                               headers=[("connection", "close")])
        except Exception as exc:
            if not name:
                log.exception("internal error [request_id=%s]", ctx.request_id)
                ctx.error = f"internal: {type(exc).__name__}"
                return ctx.problem(500, "internal gateway error")
            return self._plugin_failed(ctx, name, phase, exc)

    def _plugin_failed(self, ctx: Context, name: str, phase: str, exc: BaseException) -> Response:
        log.error("plugin %s failed in %s [request_id=%s]: %s: %s", name, phase, ctx.request_id,
                  type(exc).__name__, exc, exc_info=exc)
        ctx.error = f"plugin {name} failed in {phase}"
        return ctx.problem(500, f"plugin {name} failed", plugin=name)

    def upstream_path(self, ctx: Context) -> str:
        cfg = ctx.route.config  # type: ignore[union-attr]
        path = ctx.request.path
        if cfg.rewrite is not None:
            values = dict(ctx.params)
            values["rest"] = ctx.rest.lstrip("/")
            path = cfg.rewrite
            for k, v in values.items():
                path = path.replace("{" + k + "}", v)
            path = path.replace("//", "/")
        elif cfg.strip_prefix:
            route = ctx.route
            prefix = cfg.strip_prefix.rstrip("/")
            view = path
            if route.matrix_params and (";" in view or "%3B" in view):  # type: ignore[union-attr]
                view = strip_matrix_params(view)
            if route.ignore_case:  # type: ignore[union-attr]
                view, prefix = view.lower(), prefix.lower()
            if view == prefix or view.startswith(prefix + "/"):
                # segment-wise, so the client's ";" parameters and case survive in what is forwarded
                path = (path[len(prefix):] if view is path else
                        tail_segments(path, view.count("/") - prefix.count("/"))) or "/"
        return path

    def upstream_headers(self, ctx: Context) -> list[tuple[bytes, bytes]]:
        req = ctx.request
        peer = req.client[0] if req.client else ctx.client_ip
        cfg = ctx.route.config  # type: ignore[union-attr]
        out = forward_request_headers(
            req.headers, peer=peer, trusted=self.trusted.trusts(peer), scheme=req.scheme,
            host=req.authority, mode=self.forward_mode, via=self.via, http_version=req.http_version,
        )
        if cfg.host_header:
            out.insert(0, (b"host", cfg.host_header.encode("idna")))
        elif cfg.preserve_host and req.authority:  # the normalized authority routing and the cache used
            out.insert(0, (b"host", req.authority.encode("latin-1")))
        offered = self.upgrade_offer(ctx)
        if offered:
            out.append((b"connection", b"upgrade"))
            out.append((b"upgrade", offered.encode("latin-1")))
        rid = self._rid_header_b
        out = [(n, v) for n, v in out if n != rid]
        out.append((rid, ctx.request_id.encode()))
        return out

    def upgrade_offer(self, ctx: Context) -> str:
        """The Upgrade protocols of the request this route tunnels ("" for none: a plain request).

        Only protocols in ``routes.<name>.upgrades`` pass (compared case-insensitively, without
        the ``/version``); the rest are stripped, as a server that ignores Upgrade would
        (RFC 9110 §7.8). ``h2c`` is never among them (RFC 9113 §3.1).
        """
        req = ctx.request
        if "upgrade" not in req.headers:
            return ""
        if "upgrade" not in (t.lower() for t in req.headers.get_list("connection")):
            return ""
        allowed = ctx.route.upgrades  # type: ignore[union-attr]
        return ", ".join(p for p in req.headers.get_list("upgrade") if p.partition("/")[0].strip().lower() in allowed)

    async def forward(self, ctx: Context) -> Response:
        """Send the (possibly transformed) request to the route's upstream."""
        route = ctx.route
        assert route is not None
        upstream = route.upstream
        if upstream is None:
            return ctx.problem(502, "this route has no upstream and no plugin answered")
        req = ctx.request
        path = self.upstream_path(ctx)
        target = path + ("?" + req.query if req.query else "")
        body = req.body
        # before a target is picked: a small body arrives whole, and no upstream connection waits for it
        await body.prime(self.body_buffer)
        if body.length == 0 and not body.started:
            body = None
        started = ctx.elapsed
        ctx.upstream_started = started
        ctx.upstream_name = upstream.name
        resp, tgt = await upstream.request(req.method, target, self.upstream_headers(ctx), body,
                                           key=upstream.hash_key(ctx))
        ctx.upstream_target = tgt.url
        ctx.upstream_seconds = ctx.elapsed - started
        if resp.status == 101 and not _switch_agrees(self.upgrade_offer(ctx), resp.headers.get_list("upgrade")):
            # a switch the gateway did not offer (e.g. h2c after a stripped Upgrade) would tunnel past routing
            if resp.upgrade is not None:
                await trio.aclose_forcefully(resp.upgrade[0])
                resp.upgrade = None
            ctx.error = "upstream switched protocols without an allowed upgrade"
            return ctx.problem(502, "the upstream switched to a protocol this route does not allow")
        raw = resp.headers.raw
        if resp.status != 101 and any(n in _RESP_HOP for n, _ in raw):
            raw = strip_hop_by_hop(raw)
        if self.via is not None:
            prior = b", ".join(v for n, v in raw if n == b"via")
            raw = [(n, v) for n, v in raw if n != b"via"] if prior else raw
            raw.append((b"via", (prior + b", " if prior else b"") + b"1.1 triogate"))
        resp.headers = Headers.from_raw(raw)
        return resp


def _switch_agrees(offered: str, switched: list[str]) -> bool:
    """A 101 is believed only if it names one protocol, one the gateway offered (RFC 9110 §7.8)."""
    if not offered or len(switched) != 1:
        return False
    names = {p.partition("/")[0].strip().lower() for p in offered.split(",")}
    return switched[0].partition("/")[0].strip().lower() in names


def _answered(ctx: Context, name: str, phase: str, r: Any) -> Response:
    """A hook returned something: a Response short-circuits; anything else is that plugin's bug."""
    if not isinstance(r, Response):
        raise TypeError(f"{phase} returned {type(r).__name__}, expected a triogate.Response or None")
    ctx.short_circuit = (name, phase)
    return r


def _key(*steps: str) -> str:
    path = ""
    for step in steps:
        path = _path_join(path, step)
    return path


def _adapt(impl: Any, spec_args: tuple[str, ...]) -> Any:
    """Call hook implementations positionally; pluggy lets an impl take fewer arguments."""
    fn = impl.function
    if tuple(impl.argnames) == spec_args:
        return fn
    wanted = impl.argnames

    async def call(*args: Any) -> Any:
        return await fn(**{n: a for n, a in zip(spec_args, args) if n in wanted})

    return call


def _timed(name: str, phase: str, fn: Any) -> Any:
    """Record ``(plugin, phase, start, end)`` (``time.perf_counter``) in ``ctx.hook_timings`` when it is a list."""

    async def call(ctx: Context, *rest: Any) -> Any:
        timings = ctx.hook_timings
        if timings is None:
            return await fn(ctx, *rest)
        start = time.perf_counter()
        try:
            return await fn(ctx, *rest)
        finally:
            timings.append((name, phase, start, time.perf_counter()))

    return call


_RESP_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                       b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"})

