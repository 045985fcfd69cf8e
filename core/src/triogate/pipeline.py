"""The request pipeline of one loaded config: routing, plugin phases, the upstream call.

It knows nothing about how bytes arrived; the native listener and the ASGI app
both build a :class:`~triogate.Request` and call :meth:`Pipeline.handle`.
Per route, the ordered hook calls of every phase are computed once at load
(:mod:`triogate.hookchain`); a request only runs them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import trio

from .admission import Admission
from .config import Config, ConfigError
from .context import Context, GatewayServices
from .fields import key_path
from .headers import Headers
from .hookchain import Chain
from .messages import BodyTooLarge, Request, Response
from .plugin_uses import PluginUses
from .plugins import PluginRegistry
from .problem import GatewayError
from .proxy import TrustedProxies, forward_request_headers, new_request_id, strip_hop_by_hop, valid_request_id
from .resources import SharedResources
from .routing import PathPolicy, Route, Router, strip_matrix_params, tail_segments
from .runtime import Runtime
from .upstream import HTTPClient, Upstream
from .tlsfiles import TLSFileError

__all__ = ["Chain", "ClientError", "Pipeline"]

log = logging.getLogger("triogate")


class ClientError(GatewayError):
    """The client sent something malformed mid-request (e.g. a bad chunk): 400."""

    status = 400


def _answering(chain: Any) -> list[str]:
    """Plugins (and hook modules) of a chain that run before the upstream call, so could answer a request."""
    return list(dict.fromkeys(name for phase in (chain.pre_route, chain.auth, chain.transform) for name, _ in phase))


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
            self.warnings.extend(ucfg.deprecations(key_path("upstreams", name)))
            try:  # builds the TLS context: reads the tls files again (they may have changed since parsing)
                self.upstreams[name] = Upstream(name, ucfg, config.gateway.http1_parser, base,
                                                resolvers=config.gateway.resolvers)
            except TLSFileError as exc:
                errors.append(f"{key_path('upstreams', name)}.tls.{exc.field}: {exc}")
        self.services = GatewayServices(config, http, self.upstreams, version=version, worker=worker,
                                        process=process, runtime=runtime, forward=self.forward,
                                        outgoing=self.outgoing)
        gcfg = config.gateway
        self.trusted = TrustedProxies(gcfg.trusted_proxies)
        self.forward_mode = gcfg.forwarded_headers
        self.via = b"triogate" if gcfg.via else None
        self.request_id_header = gcfg.request_id_header.lower()
        self._rid_header_b = self.request_id_header.encode("latin-1")
        self.max_body = gcfg.limits.max_body_bytes
        self.path_policy = PathPolicy(gcfg.paths.encoded_slash, gcfg.paths.trailing_dot)
        self.body_buffer = gcfg.limits.body_buffer_bytes

        uses = PluginUses(config, registry, self.services)
        self.skipped = uses.skipped  # plugins left out with plugins_on_error = "skip"
        errors.extend(uses.errors)
        if errors:
            raise ConfigError(list(dict.fromkeys(errors)), config.source)
        self.instances = uses.instances
        #: every hook's ordered calls: the lifecycle hooks (the Gateway) and admin routes (the admin API)
        self.hooks = uses.hooks
        self.timed = self.hooks.timed  # a tracing plugin asked: every phase hook call is timed
        self.admission = Admission(uses.identity, gcfg.underscores_in_headers)
        self.global_chain = uses.global_chain()
        before_routing = [name for name, _ in self.global_chain.pre_route]  # global pre_route hooks may answer too
        routes: list[Route] = []
        for rname, rcfg in config.routes.items():
            route = Route(rname, rcfg)
            route.upstream = self.upstreams.get(rcfg.upstream) if rcfg.upstream else None
            route.chain = uses.chain(rname, rcfg.priorities)
            if rcfg.upstream is None and not any(
                    type(i).answers_requests for i in self.instances if i.route in (rname, None)
                    and i.name in route.chain.order):
                answering = list(dict.fromkeys(before_routing + _answering(route.chain)))
                at = key_path("routes", rname)
                if not route.chain.order and not answering and not rcfg.plugins and not config.plugins:
                    errors.append(f"{at}: no upstream and no plugins, so every request would get 502: "
                                  f"set {at}.upstream (or add a plugin that answers)")
                elif not answering:
                    self.warnings.append(f"{at}: no upstream, and none of its plugins runs before the upstream call, "
                                         f"so every request will get 502: set {at}.upstream")
                else:
                    self.warnings.append(f"{at}: no upstream, so requests get 502 unless a plugin answers them "
                                         f"({', '.join(answering)}); set {at}.upstream if none of them does")
            routes.append(route)
        if errors:
            raise ConfigError(errors, config.source)
        self.router = Router(routes)
        self.services.router = self.router
        self.services.plugins = self.instances

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

    def outgoing(self, ctx: Context) -> tuple[str, list[tuple[bytes, bytes]]]:
        """The request target and header list the upstream call would send for ``ctx`` now."""
        query = ctx.request.query
        return self.upstream_path(ctx) + ("?" + query if query else ""), self.upstream_headers(ctx)

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
        """Send the (possibly transformed) request to its upstream: the one a plugin chose
        (``ctx.use_upstream``), else the route's."""
        route = ctx.route
        assert route is not None
        upstream = ctx.upstream or route.upstream
        if upstream is None:
            return ctx.problem(502, "this route has no upstream and no plugin answered")
        req = ctx.request
        target, headers = self.outgoing(ctx)
        body = req.body
        # before a target is picked: a small body arrives whole, and no upstream connection waits for it
        await body.prime(self.body_buffer)
        if body.length == 0 and not body.started:
            body = None
        started = ctx.elapsed
        ctx.upstream_started = started
        ctx.upstream_name = upstream.name
        resp, tgt = await upstream.request(req.method, target, headers, body,
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
        hop = via = False
        for n, _ in raw:  # one pass (generators per question cost more than the answers)
            if n in _RESP_HOP:
                hop = True
            elif n == b"via":
                via = True
        if hop and resp.status != 101:
            raw = strip_hop_by_hop(raw)
        if self.via is not None:
            prior = b", ".join([v for n, v in raw if n == b"via"]) if via else b""
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


_RESP_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                       b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"})

