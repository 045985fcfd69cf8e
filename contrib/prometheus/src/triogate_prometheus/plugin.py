"""The prometheus plugin: counts every finished request in the ``log`` hook (after the response
went out) and serves ``/metrics`` on the admin listener."""

from __future__ import annotations

import trio
import triogate

from .config import PrometheusConfig
from .exposition import render
from .labels import auth_failure, cache_result, method_label, rate_limited, status_class
from .metrics import Metrics

__all__ = ["PrometheusPlugin"]

METRICS_KEY = ("triogate_prometheus", "metrics")


class PrometheusPlugin(triogate.Plugin):
    """Request metrics by route, method, status class (and optionally consumer), served at /metrics."""

    priority = 10_000  # its only request hook is `log`; priority just orders it among log hooks
    Config = PrometheusConfig

    def __init__(self, config: PrometheusConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        if route is not None:
            raise ValueError("prometheus counts every route: configure it once, under [plugins.prometheus]")
        super().__init__(config, gateway, route)
        self.metrics: Metrics | None = None

    async def _shared(self) -> Metrics:
        """One set of metric objects per gateway, kept across reloads (counters never go back)."""
        c = self.config
        m = await self.gateway.shared(METRICS_KEY, lambda: Metrics(c.max_consumers, c.max_reasons), scope="process")
        m.consumer.limit = self.config.max_consumers
        m.reason.limit = self.config.max_reasons
        return m

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices, nursery: trio.Nursery) -> None:
        self.metrics = await self._shared()
        if self.metrics.multiprocess:
            nursery.start_soon(self._sampler)

    async def _sampler(self) -> None:
        """With several workers a scrape reads every worker's files: keep this worker's gauges fresh."""
        assert self.metrics is not None
        while True:
            self.metrics.sample(self.gateway.runtime)
            await trio.sleep(self.config.sample_interval)

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        m = self.metrics
        if m is None:
            return
        route = ctx.route.name if ctx.route is not None else ""
        method = method_label(ctx.request.method)
        sclass = status_class(ctx.status)
        consumer = ""
        if self.config.consumer_label and ctx.principal is not None:
            p = ctx.principal
            consumer = "anonymous" if p.anonymous else m.consumer(p.consumer or "")
        c = m.child
        c(m.requests, route, method, sclass, consumer).inc()
        c(m.duration, route, method, sclass).observe(ctx.elapsed)
        if ctx.bytes_in:
            c(m.bytes_in, route).inc(ctx.bytes_in)
        if ctx.bytes_out:
            c(m.bytes_out, route).inc(ctx.bytes_out)
        if ctx.upstream_name is not None:
            if ctx.upstream_seconds is not None:
                c(m.upstream_duration, route, ctx.upstream_name).observe(ctx.upstream_seconds)
            elif ctx.upstream_target is None:
                c(m.upstream_errors, route, ctx.upstream_name).inc()
        if ctx.short_circuit is not None:
            failed = auth_failure(ctx)
            if failed is not None:
                c(m.auth_failures, route, failed[0], m.reason(failed[1])).inc()
            else:
                limiter = rate_limited(ctx)
                if limiter is not None:
                    c(m.rate_limited, route, limiter).inc()
        resp = ctx.response
        if resp is not None:
            cs = resp.headers.get("cache-status")
            if cs is not None:
                result = cache_result(cs)
                if result is not None:
                    c(m.cache, route, result).inc()

    @triogate.hookimpl
    def admin_routes(self, gateway: triogate.GatewayServices) -> list[triogate.AdminRoute]:
        async def metrics(request: triogate.Request) -> triogate.Response:
            m = self.metrics or await self._shared()
            m.sample(gateway.runtime)
            accept = request.headers.get("accept")
            if m.multiprocess:  # reads every worker's files: off the event loop
                payload, content_type = await trio.to_thread.run_sync(render, m, accept)
            else:
                payload, content_type = render(m, accept)
            return triogate.Response(200, [("content-type", content_type)], payload)

        return [triogate.AdminRoute("GET", self.config.path, metrics, "Prometheus metrics")]

    def __repr__(self) -> str:
        return "<PrometheusPlugin>"
