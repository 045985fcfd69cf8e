"""The fallback plugin: replaces a failed upstream call's answer in ``post_response``.

Only the upstream call's outcome is replaced -- the upstream's own 502/503/504 or the
gateway's problem+json for a connect failure, a timeout, an open circuit or no healthy
target -- never an answer a plugin or the core gave before the call (a 401, a 429, a cache
hit), nor a status outside ``statuses``.

Priority 150: ``post_response`` runs in reverse priority order, so this plugin runs *after*
the cache plugin (priority 100). A stale response the cache serves under stale-if-error has
already replaced the 5xx when this plugin looks, so stale-if-error wins, and a fallback
answer is never offered to the cache for storing under the primary's key.
"""

from __future__ import annotations

import logging

import triogate

from .config import FallbackConfig

__all__ = ["FallbackPlugin"]

log = logging.getLogger("triogate.fallback")

_DONE = "fallback:done"
COUNTER = "triogate_fallbacks_total"
#: why the gateway itself answered the status (no upstream response): the counter's reason
_GATEWAY_REASONS = {502: "error", 503: "unavailable", 504: "timeout"}


def reason(ctx: triogate.Context, status: int) -> str:
    """``status``: the upstream answered a listed status; ``timeout`` (504), ``unavailable`` (503: no
    healthy target, circuits open, pool full, no address yet) or ``error`` (502: connect failure,
    reset, invalid response): the gateway answered for an upstream call that got no response."""
    if ctx.upstream_target is not None:
        return "status"
    return _GATEWAY_REASONS.get(status, "error")


class FallbackPlugin(triogate.Plugin):
    priority = 150
    Config = FallbackConfig

    def __init__(self, config: FallbackConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        if config.upstream is not None and config.upstream not in gateway.config.upstreams:
            known = ", ".join(sorted(gateway.config.upstreams)) or "none defined"
            raise ValueError(f"upstream: unknown upstream {config.upstream!r} (known: {known})")
        self.statuses = frozenset(config.statuses)
        self.counter = gateway.counter(
            COUNTER, "Failed upstream calls the fallback plugin acted on, by reason (status, timeout, unavailable, "
            "error) and result (static, upstream, failed: the fallback upstream failed too, skipped: the "
            "request could not be sent twice).", ("route", "reason", "result"))
        self.marker = f"upstream:{config.upstream}" if config.upstream is not None else "static"
        static = config.static
        if static is not None:
            body = static.body.encode()
            headers = [(k.lower(), v) for k, v in static.headers.items()]
            if body and not any(k == "content-type" for k, _ in headers):
                headers.append(("content-type", "text/plain; charset=utf-8"))
            headers.append(("content-length", str(len(body))))
            self._static: tuple[int, list[tuple[str, str]], bytes] | None = (static.status, headers, body)
        else:
            self._static = None

    def _static_response(self) -> triogate.Response:
        status, headers, body = self._static  # type: ignore[misc]
        return triogate.Response(status, list(headers), body)

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> triogate.Response | None:
        if response.status not in self.statuses:
            return None
        # only the upstream call's outcome: a short-circuit (auth 401, 429, cache hit) or an
        # answer before the call (ctx.upstream_name unset) stays; so does a later plugin's failure
        if ctx.short_circuit is not None or ctx.upstream_name is None or ctx.state.get(_DONE):
            return None
        if ctx.error is not None and ctx.error.startswith("plugin "):
            return None
        ctx.state[_DONE] = True
        primary = ctx.upstream_name
        why = reason(ctx, response.status)
        ctx.log_extra["fallback_from"] = {"upstream": primary, "status": response.status, "reason": why}
        route = ctx.route.name if ctx.route is not None else ""
        if self._static is not None:
            await response.body.aclose()
            out = self._static_response()
            out.headers.set(self.config.header, self.marker)
            ctx.log_extra["fallback"] = "static"
            self.counter.inc(route, why, "static")
            return out
        result = await self._from_upstream(ctx, response, primary)
        outcome = ctx.log_extra.get("fallback", "")
        self.counter.inc(route, why, "skipped" if result is None else "failed" if outcome.endswith("failed")
                         else "upstream")
        return result

    async def _from_upstream(self, ctx: triogate.Context, response: triogate.Response,
                             primary: str) -> triogate.Response | None:
        name = self.config.upstream
        assert name is not None
        if name == primary:
            ctx.log_extra["fallback"] = "skipped: the fallback upstream is the one that failed"
            return None
        if not ctx.request.body.is_buffered:
            # the body streamed to the primary past gateway.limits.body_buffer_bytes: it is gone
            ctx.log_extra["fallback"] = "skipped: request body streamed, cannot be replayed"
            return None
        if "upgrade" in ctx.request.headers:
            ctx.log_extra["fallback"] = "skipped: upgrade request"
            return None
        await response.body.aclose()
        ctx.use_upstream(name)
        try:
            out = await ctx.gateway.forward(ctx)
        except triogate.GatewayError as exc:
            detail = exc.detail or f"status {exc.status}"
            log.warning("fallback upstream %s failed after %s answered %d [request_id=%s]: %s",
                        name, primary, ctx.log_extra["fallback_from"]["status"], ctx.request_id, detail)
            ctx.error = f"fallback upstream {name} failed: {detail}"
            ctx.log_extra["fallback"] = f"upstream:{name} failed"
            out = exc.to_response(ctx.request_id)
        else:
            ctx.log_extra["fallback"] = self.marker
        out.headers.set(self.config.header, self.marker)
        return out
