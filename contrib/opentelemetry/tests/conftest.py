"""Fixtures for the opentelemetry plugin's tests: a gateway whose spans land in an InMemorySpanExporter."""

from __future__ import annotations

import pytest
import trio
import triogate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from triogate_opentelemetry import OpenTelemetryPlugin

LOG_EXTRA: list[dict] = []


class SlowAuth(triogate.Plugin):
    """Takes 20 ms; x-deny -> 401; otherwise authenticates 'alice'."""

    priority = 1000

    @triogate.hookimpl
    async def auth(self, ctx):
        await trio.sleep(0.02)
        if ctx.request.headers.get("x-deny"):
            ctx.log_extra["reason"] = "denied"
            return ctx.problem(401, "denied")
        ctx.principal = triogate.Principal(consumer="alice")


class LogCapture(triogate.Plugin):
    priority = 1

    @triogate.hookimpl
    async def log(self, ctx):
        LOG_EXTRA.append(dict(ctx.log_extra))


class Traced:
    def __init__(self, gw, exporter: InMemorySpanExporter) -> None:
        self.gw = gw
        self.exporter = exporter

    async def spans(self, count: int, timeout: float = 5.0):
        """Wait until ``count`` spans ended (the log hook runs after the response was sent)."""
        with trio.fail_after(timeout):
            while len(self.exporter.get_finished_spans()) < count:
                await trio.sleep(0.005)
        await trio.sleep(0.01)
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traced_gateway(gateway_factory, upstream):
    async def make(routes: dict | None = None, upstreams: dict | None = None, **otel) -> Traced:
        LOG_EXTRA.clear()
        cfg = {
            "plugins": {"opentelemetry": {"exporter": "none", "min_hook_ms": 1.0, **otel}, "logcapture": {}},
            "upstreams": {"users": {"targets": [{"url": upstream.url}]}, **(upstreams or {})},
            "routes": routes or {
                "users": {"paths": ["/api/users"], "upstream": "users", "strip_prefix": "/api",
                          "plugins": {"slowauth": {}}},
            },
        }
        gw = await gateway_factory(cfg, plugins={"opentelemetry": OpenTelemetryPlugin, "slowauth": SlowAuth,
                                                 "logcapture": LogCapture})
        exporter = InMemorySpanExporter()
        gw.gateway.services.instances(OpenTelemetryPlugin)[0].provider.add_span_processor(SimpleSpanProcessor(exporter))
        return Traced(gw, exporter)

    return make


@pytest.fixture
def log_extra() -> list[dict]:
    return LOG_EXTRA
