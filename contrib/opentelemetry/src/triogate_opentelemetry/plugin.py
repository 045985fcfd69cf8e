"""The opentelemetry plugin: a server span per request, child spans per plugin hook that took
time and per upstream call, W3C trace context in and out.

Spans other than the server span are recorded after the response (in the ``log`` hook) from the
timings the core keeps for tracing plugins (``ctx.hook_timings``, ``ctx.upstream_started``), so
tracing adds no span bookkeeping inside the request phases. The upstream call's span id is chosen
before the call and sent upstream in ``traceparent``; its span is recorded under that id.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import trio
import triogate
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from .config import OpenTelemetryConfig
from .propagation import GETTER, PROPAGATOR, SETTER
from .provider import PresetIdGenerator, make_provider

__all__ = ["STATE_KEY", "OpenTelemetryPlugin"]

STATE_KEY = "opentelemetry"


class _Trace:
    __slots__ = ("anchor", "client_span_id", "context", "responded", "span")

    def __init__(self, span: Any, anchor: int) -> None:
        self.span = span
        self.context: SpanContext = span.get_span_context()
        self.anchor = anchor  # wall-clock ns = anchor + perf_counter() * 1e9
        self.client_span_id: int | None = None
        self.responded: float | None = None

    def ns(self, perf: float) -> int:
        return self.anchor + int(perf * 1e9)


class OpenTelemetryPlugin(triogate.Plugin):
    """Traces every request; configure once under ``[plugins.opentelemetry]``."""

    priority = 100_000  # first: the server span starts before any other plugin runs
    wants_hook_timings = True
    Config = OpenTelemetryConfig

    def __init__(self, config: OpenTelemetryConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        if route is not None:
            raise ValueError("opentelemetry traces every route: configure it once, under [plugins.opentelemetry]")
        super().__init__(config, gateway, route)
        self.provider: Any = None
        self.tracer: Any = None
        self._ids: PresetIdGenerator | None = None
        self._min_hook = config.min_hook_ms / 1000.0

    # ------------------------------------------------------------------ lifecycle

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices) -> None:
        self.provider, self._ids = make_provider(self.config, gateway.worker)
        self.tracer = self.provider.get_tracer("triogate", triogate.__version__)

    @triogate.hookimpl
    async def shutdown(self, gateway: triogate.GatewayServices) -> None:
        provider, self.tracer = self.provider, None
        if provider is None:
            return
        with trio.move_on_after(self.config.timeout):
            await trio.to_thread.run_sync(provider.shutdown, abandon_on_cancel=True)  # flushes pending spans

    # ------------------------------------------------------------------ request phases

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> None:
        tracer = self.tracer
        if tracer is None or STATE_KEY in ctx.state:
            return
        anchor = time.time_ns() - int(time.perf_counter() * 1e9)
        req = ctx.request
        parent = PROPAGATOR.extract(req.headers, getter=GETTER)
        attributes = {
            "http.request.method": req.method,
            "url.path": req.path,
            "url.scheme": req.scheme,
            "client.address": ctx.client_ip,
            "triogate.request_id": ctx.request_id,
        }
        if req.host:
            attributes["server.address"] = req.host
        ua = req.headers.get("user-agent")
        if ua:
            attributes["user_agent.original"] = ua
        span = tracer.start_span(req.method, context=parent, kind=SpanKind.SERVER,
                                 start_time=anchor + int(ctx.started * 1e9), attributes=attributes)
        t = _Trace(span, anchor)
        ctx.state[STATE_KEY] = t
        sc = t.context
        if sc.is_valid:
            ctx.log_extra["trace_id"] = trace.format_trace_id(sc.trace_id)
            ctx.log_extra["span_id"] = trace.format_span_id(sc.span_id)
        if span.is_recording():
            ctx.hook_timings = []

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        """Send the trace upstream: traceparent names the upstream call's span (recorded later)."""
        t: _Trace | None = ctx.state.get(STATE_KEY)
        if t is None or not t.context.is_valid:
            return
        assert self._ids is not None
        sid = self._ids.fresh_span_id()
        t.client_span_id = sid
        sc = t.context
        child = SpanContext(sc.trace_id, sid, is_remote=False, trace_flags=sc.trace_flags, trace_state=sc.trace_state)
        headers = ctx.request.headers
        headers.remove("tracestate")
        PROPAGATOR.inject(headers, context=trace.set_span_in_context(NonRecordingSpan(child)), setter=SETTER)

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        t: _Trace | None = ctx.state.get(STATE_KEY)
        if t is not None:
            t.responded = time.perf_counter()

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        t: _Trace | None = ctx.state.pop(STATE_KEY, None)
        if t is None:
            return
        span = t.span
        if span.is_recording() and self.tracer is not None:
            self._children(ctx, t)
            route = ctx.route.name if ctx.route is not None else None
            if route is not None:
                span.update_name(f"{ctx.request.method} {route}")
                span.set_attribute("triogate.route", route)
            span.set_attribute("http.response.status_code", ctx.status)
            if ctx.principal is not None and ctx.principal.consumer:
                span.set_attribute("triogate.consumer", ctx.principal.consumer)
            if ctx.short_circuit is not None:
                span.set_attribute("triogate.short_circuit.plugin", ctx.short_circuit[0])
                span.set_attribute("triogate.short_circuit.phase", ctx.short_circuit[1])
            if ctx.error:
                span.set_attribute("error.type", ctx.error)
            if ctx.status >= 500:
                span.set_status(Status(StatusCode.ERROR, ctx.error or None))
        span.end()

    # ------------------------------------------------------------------ recorded spans

    def _children(self, ctx: triogate.Context, t: _Trace) -> None:
        tracer = self.tracer
        parent = trace.set_span_in_context(t.span)
        first_post_response: float | None = None
        for name, phase, start, end in ctx.hook_timings or ():
            if phase == "post_response" and (first_post_response is None or start < first_post_response):
                first_post_response = start
            if name == self.name or end - start < self._min_hook:
                continue
            s = tracer.start_span(f"{name} {phase}", context=parent, start_time=t.ns(start),
                                  attributes={"triogate.plugin": name, "triogate.phase": phase})
            if ctx.short_circuit == (name, phase):
                s.set_attribute("triogate.short_circuit", True)
            s.end(end_time=t.ns(end))
        if ctx.upstream_started is None or t.client_span_id is None:
            return
        start = ctx.started + ctx.upstream_started
        if ctx.upstream_seconds is not None:
            end = start + ctx.upstream_seconds
        else:  # no response: the call ended when the response phase began
            end = min(x for x in (first_post_response, t.responded, time.perf_counter()) if x is not None)
        attributes: dict[str, Any] = {"http.request.method": ctx.request.method,
                                      "triogate.upstream": ctx.upstream_name or ""}
        if ctx.upstream_target is not None:
            u = urlsplit(ctx.upstream_target)
            attributes["server.address"] = u.hostname or ""
            attributes["server.port"] = u.port or (443 if u.scheme == "https" else 80)
            attributes["triogate.upstream.target"] = ctx.upstream_target
            if ctx.short_circuit is None:
                attributes["http.response.status_code"] = ctx.status
        assert self._ids is not None
        self._ids.next_span_id = t.client_span_id
        s = tracer.start_span(ctx.request.method, context=parent, kind=SpanKind.CLIENT,
                              start_time=t.ns(start), attributes=attributes)
        if ctx.upstream_target is None:
            s.set_status(Status(StatusCode.ERROR, ctx.error or "no upstream response"))
        elif ctx.short_circuit is None and ctx.status >= 500:
            s.set_status(Status(StatusCode.ERROR))
        s.end(end_time=t.ns(end))
