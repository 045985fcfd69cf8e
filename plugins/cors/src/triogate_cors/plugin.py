"""The cors plugin: preflights answered in ``pre_route``; actual responses decorated in ``post_response``.

Preflights are answered before the auth phase (the browser sends them without
credentials), so they never reach auth plugins. The plugin owns the
``Access-Control-Allow-*`` / ``-Expose-Headers`` response headers: an upstream's own
values are replaced, or removed when the origin is not allowed.
"""

from __future__ import annotations

import triogate

from .config import CorsConfig
from .policy import Policy

_PREFLIGHT = "cors:preflight"
_UPSTREAM_CORS = ("access-control-allow-origin", "access-control-allow-credentials",
                  "access-control-expose-headers", "access-control-allow-methods", "access-control-allow-headers",
                  "access-control-max-age")


def add_vary(headers: triogate.Headers, *names: str) -> None:
    """Add field names to Vary without duplicating them (``Vary: *`` stays as it is)."""
    present = {v.lower() for v in headers.get_list("vary")}
    if "*" in present:
        return
    missing = [n for n in names if n.lower() not in present]
    if missing:
        values = headers.get_list("vary") + missing
        headers.set("vary", ", ".join(values))


class CorsPlugin(triogate.Plugin):
    priority = 2000
    Config = CorsConfig

    def __init__(self, config: CorsConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.policy = Policy(config)

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> triogate.Response | None:
        req = ctx.request
        if req.method != "OPTIONS":
            return None
        origin = req.headers.get("origin")
        wanted = req.headers.get("access-control-request-method")
        if origin is None or wanted is None:
            return None  # a plain OPTIONS request, not a preflight: proxied like any other
        ctx.state[_PREFLIGHT] = True
        policy = self.policy
        vary = [("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")]
        if not policy.origin_allowed(origin):
            return ctx.problem(403, f"origin {origin!r} is not allowed (CORS)", headers=vary)
        if wanted not in policy.methods:
            return ctx.problem(403, f"method {wanted!r} is not allowed (CORS)", headers=vary)
        requested = req.headers.get_list("access-control-request-headers")
        if not policy.headers_allowed(requested):
            refused = sorted({h.lower() for h in requested} - policy.headers)
            return ctx.problem(403, f"request headers not allowed (CORS): {', '.join(refused)}", headers=vary)
        headers = [
            ("access-control-allow-origin", policy.allow_origin_value(origin)),
            ("access-control-allow-methods", policy.methods_value),
        ]
        allow_headers = ", ".join(requested) if policy.reflect_headers else policy.headers_value
        if allow_headers:
            headers.append(("access-control-allow-headers", allow_headers))
        if policy.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        if policy.max_age_value is not None:
            headers.append(("access-control-max-age", policy.max_age_value))
        headers.extend(vary)
        headers.append(("content-length", "0"))
        return triogate.Response(204, headers)

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        if ctx.state.get(_PREFLIGHT):
            return  # answered (or refused) above, headers already complete
        origin = ctx.request.headers.get("origin")
        h = response.headers
        h.remove(*_UPSTREAM_CORS)
        policy = self.policy
        if policy.varies_by_origin():
            add_vary(h, "Origin")
        if origin is None or not policy.origin_allowed(origin):
            return
        h.set("access-control-allow-origin", policy.allow_origin_value(origin))
        if policy.credentials:
            h.set("access-control-allow-credentials", "true")
        if policy.exposed_value:
            h.set("access-control-expose-headers", policy.exposed_value)
