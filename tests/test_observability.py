"""Observability with the real first-party plugins: prometheus metrics and opentelemetry spans after
a known sequence of requests -- key-auth 401s, a rate-limit 429, a cache miss then hit, an upstream
502 -- and the access log line of each."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import trio
import triogate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from triogate import HTTPClient
from triogate_opentelemetry import OpenTelemetryPlugin

TOKEN = "observability-admin-token"
KEY = "partner-key-0123"


async def metrics_of(gw) -> dict:
    client = HTTPClient(read_timeout=10.0)
    try:
        r = await client.fetch("GET", gw.gateway.admin.url + "/metrics",
                               headers=[("authorization", f"Bearer {TOKEN}")], timeout=10.0)
    finally:
        await client.aclose()
    assert r.status == 200
    out = {}
    for family in text_string_to_metric_families(r.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def v(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_spans_and_log_with_real_plugins(gateway_factory, upstream, upstream_factory, tmp_path: Path):
    async def bad_gateway(request: triogate.Request) -> triogate.Response:
        return triogate.Response(502, [("content-type", "text/plain")], b"bad")

    broken = await upstream_factory(bad_gateway)
    log = tmp_path / "access.log"
    gw = await gateway_factory({
        "gateway": {"access_log": str(log)},
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN},
        "plugins": {"prometheus": {"consumer_label": True},
                    "opentelemetry": {"exporter": "none", "min_hook_ms": 0.0}},
        "consumers": {"partner": {"credentials": {"key-auth": {
            "keys": ["sha256:" + hashlib.sha256(KEY.encode()).hexdigest()]}}}},
        "upstreams": {"users": {"targets": [{"url": upstream.url}]},
                      "broken": {"targets": [{"url": broken.url}], "circuit_breaker": {"failures": 0}}},
        "routes": {
            "partner": {"paths": ["/partner"], "upstream": "users",
                        "plugins": {"key-auth": {"key_names": ["x-api-key"]}}},
            "limited": {"paths": ["/limited"], "upstream": "users",
                        "plugins": {"rate-limit": {"limits": ["1/minute"], "key": "ip"}}},
            "cached": {"paths": ["/cached"], "upstream": "users", "plugins": {"cache": {"default_ttl": 30.0}}},
            "broken": {"paths": ["/broken"], "upstream": "broken"},
        },
    }, autoload=True)
    exporter = InMemorySpanExporter()
    gw.gateway.services.instances(OpenTelemetryPlugin)[0].provider.add_span_processor(SimpleSpanProcessor(exporter))
    c = gw.client

    assert (await c.get("/partner")).status == 401                                  # no key: core 401
    assert (await c.get("/partner", headers={"x-api-key": "wrong-key"})).status == 401
    ok = await c.get("/partner", headers={"x-api-key": KEY})
    assert ok.status == 200
    assert [(await c.get("/limited")).status for _ in range(2)] == [200, 429]
    first, second = await c.get("/cached"), await c.get("/cached")
    assert "fwd=" in first.headers["cache-status"] and "hit" in second.headers["cache-status"]
    assert (await c.get("/broken")).status == 502

    with trio.fail_after(5):
        while log.read_text().count("\n") < 8 if log.exists() else True:
            await trio.sleep(0.01)
    s = await metrics_of(gw)
    req = "triogate_requests_total"
    assert v(s, req, route="partner", method="GET", status_class="4xx", consumer="") == 2
    assert v(s, req, route="partner", method="GET", status_class="2xx", consumer="partner") == 1
    auth = {dict(labels)["reason"]: val for (name, labels), val in s.items()
            if name == "triogate_auth_failures_total"}
    assert sum(auth.values()) == 2 and all(dict(lb)["plugin"] == "key-auth" for (n, lb) in s
                                           if n == "triogate_auth_failures_total")
    assert auth.get("invalid_key") == 1, auth          # from key-auth's "authn" note
    assert v(s, "triogate_rate_limited_total", route="limited", plugin="rate-limit") == 1
    assert v(s, "triogate_cache_requests_total", route="cached", result="miss") == 1
    assert v(s, "triogate_cache_requests_total", route="cached", result="hit") == 1
    assert v(s, req, route="broken", method="GET", status_class="5xx", consumer="") == 1
    assert v(s, "triogate_upstream_duration_seconds_count", route="broken", upstream="broken") == 1

    # spans: one server span per request; the upstream got the upstream-call span as its parent
    spans = exporter.get_finished_spans()
    servers = [sp for sp in spans if sp.kind.name == "SERVER"]
    assert len(servers) == 8
    echoed = ok.json()["headers"]["traceparent"][0]
    (partner_server,) = [sp for sp in servers if sp.attributes.get("triogate.consumer") == "partner"]
    (upstream_call,) = [sp for sp in spans if sp.kind.name == "CLIENT"
                        and sp.context.trace_id == partner_server.context.trace_id]
    assert echoed.split("-")[1:3] == [f"{partner_server.context.trace_id:032x}", f"{upstream_call.context.span_id:016x}"]
    assert any(sp.name == "key-auth auth" and sp.parent.span_id == partner_server.context.span_id for sp in spans)
    limited = [sp for sp in servers if sp.attributes.get("triogate.short_circuit.plugin") == "rate-limit"]
    assert len(limited) == 1 and limited[0].attributes["http.response.status_code"] == 429

    # access log: the decision, the consumer, the trace id; never the key
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert KEY not in log.read_text() and "wrong-key" not in log.read_text()
    rl = next(x for x in lines if x["status"] == 429)
    assert rl["short_circuit"]["plugin"] == "rate-limit" and rl["short_circuit"]["status"] == 429
    assert next(x for x in lines if x.get("consumer") == "partner")["trace_id"] == f"{partner_server.context.trace_id:032x}"
