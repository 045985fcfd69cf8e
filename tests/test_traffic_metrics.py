"""traffic-split, mirror and fallback counts at the prometheus plugin's ``/metrics``, and the
upstream a plugin chose in the access log and the trace.

The plugins declare counters through the core (``GatewayServices.counter``); the prometheus
plugin exports them at scrape time. Real upstreams on loopback: two versions, a shadow that
answers, a dead shadow, a slow shadow, a primary that answers 503 and a backup.
"""

from __future__ import annotations

from typing import Any

import trio
import triogate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from triogate import HTTPClient
from triogate.counters import Counters
from triogate.testing import free_port
from triogate_fallback import FallbackPlugin
from triogate_mirror import MirrorPlugin
from triogate_opentelemetry import OpenTelemetryPlugin
from triogate_prometheus import PrometheusPlugin
from triogate_traffic_split import TrafficSplitPlugin

TOKEN = "metrics-admin-token-0123"
PLUGINS = {"prometheus": PrometheusPlugin, "traffic-split": TrafficSplitPlugin, "mirror": MirrorPlugin,
           "fallback": FallbackPlugin}


async def scrape(gw: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    client = HTTPClient(read_timeout=10.0)
    try:
        r = await client.fetch("GET", gw.gateway.admin.url + "/metrics",
                               headers=[("authorization", f"Bearer {TOKEN}")], timeout=10.0)
    finally:
        await client.aclose()
    assert r.status == 200, r.content
    out = {}
    for family in text_string_to_metric_families(r.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def named(name: str) -> Any:
    async def handler(req: triogate.Request) -> triogate.Response:
        return triogate.Response.json({"served_by": name})
    return handler


async def test_split_mirror_and_fallback_counters_are_exported(upstream_factory, gateway_factory):
    v1 = await upstream_factory(named("v1"))
    v2 = await upstream_factory(named("v2"))
    shadow = await upstream_factory(named("shadow"))
    release = trio.Event()

    async def slow(req: triogate.Request) -> triogate.Response:
        await release.wait()
        return triogate.Response.json({})

    slow_shadow = await upstream_factory(slow)

    async def down(req: triogate.Request) -> triogate.Response:
        return triogate.Response(503, [("content-length", "0")], b"")

    primary = await upstream_factory(down)
    backup = await upstream_factory(named("backup"))
    dead = f"http://127.0.0.1:{free_port()}"
    ups = {"v1": v1.url, "v2": v2.url, "shadow": shadow.url, "dead": dead, "slow": slow_shadow.url,
           "primary": primary.url, "backup": backup.url}
    split = {"rules": [{"match": {"headers": {"x-canary": "1"}}, "upstreams": [{"name": "v2"}]},
                       {"upstreams": [{"name": "v1", "weight": 90}, {"name": "v2", "weight": 10}]}]}
    cfg = {
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN},
        "plugins": {"prometheus": {}},
        "upstreams": {n: {"targets": [{"url": u}], "retries": 0} for n, u in ups.items()},
        "routes": {
            "canary": {"paths": ["/canary"], "upstream": "v1", "plugins": {"traffic-split": split}},
            "beta": {"paths": ["/beta"], "upstream": "v1", "plugins": {"traffic-split": {
                "rules": [{"match": {"headers": {"x-beta": "1"}}, "upstreams": [{"name": "v2"}]}]}}},
            "mirrored": {"paths": ["/mirrored"], "upstream": "v1",
                         "plugins": {"mirror": {"upstream": "shadow", "max_body_bytes": 10}}},
            "mirror-dead": {"paths": ["/mirror-dead"], "upstream": "v1",
                            "plugins": {"mirror": {"upstream": "dead", "timeout": 2.0}}},
            "mirror-slow": {"paths": ["/mirror-slow"], "upstream": "v1",
                            "plugins": {"mirror": {"upstream": "slow", "max_in_flight": 1, "timeout": 10.0}}},
            "fb-upstream": {"paths": ["/fb-upstream"], "upstream": "primary",
                            "plugins": {"fallback": {"upstream": "backup"}}},
            "fb-static": {"paths": ["/fb-static"], "upstream": "dead",
                          "plugins": {"fallback": {"static": {"status": 200, "body": "later"}}}},
        },
    }
    gw = await gateway_factory(cfg, plugins=PLUGINS)
    c = gw.client
    for _ in range(10):
        assert (await c.get("/canary")).status == 200
    assert (await c.get("/canary", headers={"x-canary": "1"})).json() == {"served_by": "v2"}
    assert (await c.get("/beta")).json() == {"served_by": "v1"}
    assert (await c.get("/beta", headers={"x-beta": "1"})).json() == {"served_by": "v2"}

    assert (await c.get("/mirrored")).status == 200
    assert (await c.post("/mirrored", body=b"x" * 100)).status == 200  # above max_body_bytes
    assert (await c.get("/mirror-dead")).status == 200
    assert (await c.get("/mirror-slow")).status == 200  # its copy waits at the shadow...
    assert (await c.get("/mirror-slow")).status == 200  # ...so this one is dropped

    r = await c.get("/fb-upstream")
    assert r.json() == {"served_by": "backup"} and r.headers["x-fallback"] == "upstream:backup"
    r = await c.get("/fb-static")
    assert r.content == b"later" and r.headers["x-fallback"] == "static"

    name = "triogate_traffic_split_requests_total"
    want_split = {("canary", "1", "v1"): 9, ("canary", "1", "v2"): 1, ("canary", "0", "v2"): 1,
                  ("beta", "none", "v1"): 1, ("beta", "0", "v2"): 1}
    mirror = "triogate_mirror_requests_total"
    want_mirror = {("mirrored", "shadow", "mirrored"): 1, ("mirrored", "shadow", "too_large"): 1,
                   ("mirror-dead", "dead", "failed"): 1, ("mirror-slow", "slow", "dropped"): 1}
    with trio.fail_after(5):  # copies are counted when they end, after the client's response
        while True:
            samples = await scrape(gw)
            got = {k: value(samples, mirror, route=k[0], upstream=k[1], result=k[2]) for k in want_mirror}
            if got == want_mirror:
                break
            await trio.sleep(0.05)
    for (route, rule, upstream), n in want_split.items():
        assert value(samples, name, route=route, rule=rule, upstream=upstream) == n, (route, rule, upstream)
    assert sum(v for (n, _), v in samples.items() if n == name) == 13
    fb = "triogate_fallbacks_total"
    assert value(samples, fb, route="fb-upstream", reason="status", result="upstream") == 1
    assert value(samples, fb, route="fb-static", reason="error", result="static") == 1
    assert sum(v for (n, _), v in samples.items() if n == fb) == 2
    release.set()
    with trio.fail_after(5):
        while value(await scrape(gw), mirror, route="mirror-slow", upstream="slow", result="mirrored") != 1:
            await trio.sleep(0.05)


async def test_counters_survive_a_reload_and_never_go_back(upstream_factory, gateway_factory):
    v1 = await upstream_factory(named("v1"))
    v2 = await upstream_factory(named("v2"))
    split = {"rules": [{"upstreams": [{"name": "v2"}]}]}
    cfg = {
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN},
        "plugins": {"prometheus": {}},
        "upstreams": {"v1": {"targets": [{"url": v1.url}]}, "v2": {"targets": [{"url": v2.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "v1", "plugins": {"traffic-split": split}}},
    }
    gw = await gateway_factory(cfg, plugins=PLUGINS)
    await gw.client.get("/")
    await gw.client.get("/")
    name = "triogate_traffic_split_requests_total"
    assert value(await scrape(gw), name, route="r", rule="0", upstream="v2") == 2
    await gw.reload(cfg)
    await gw.client.get("/")
    assert value(await scrape(gw), name, route="r", rule="0", upstream="v2") == 3


def test_core_counters_refuse_bad_names_and_conflicting_labels():
    counters = Counters()
    c = counters.counter("x_things_total", "Things.", ("route",))
    assert counters.counter("x_things_total", "Things.", ["route"]) is c
    c.inc("a")
    c.inc("a", amount=2)
    assert c.value("a") == 3 and c.samples() == {("a",): 3}
    for bad in ("x-things_total", "x_things", "1_total"):
        try:
            counters.counter(bad, "")
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")
    for call in (lambda: counters.counter("x_things_total", "", ("other",)), lambda: c.inc(),
                 lambda: c.inc("a", amount=-1)):
        try:
            call()
        except ValueError:
            continue
        raise AssertionError("accepted")


async def test_access_log_and_trace_name_the_upstream_the_split_chose(upstream_factory, gateway_factory):
    """The access log's upstream/target and the OpenTelemetry upstream span's triogate.upstream
    name the upstream traffic-split chose, not the route's."""

    seen: list[tuple[str | None, str | None, dict]] = []

    class LogSpy(triogate.Plugin):
        priority = 1

        @triogate.hookimpl
        async def log(self, ctx: triogate.Context) -> None:
            seen.append((ctx.upstream_name, ctx.upstream_target, dict(ctx.log_extra)))

    v1 = await upstream_factory(named("v1"))
    v2 = await upstream_factory(named("v2"))
    split = {"rules": [{"match": {"headers": {"x-canary": "1"}}, "upstreams": [{"name": "v2"}]}]}
    gw = await gateway_factory({
        "plugins": {"opentelemetry": {"exporter": "none"}, "logspy": {}},
        "upstreams": {"v1": {"targets": [{"url": v1.url}]}, "v2": {"targets": [{"url": v2.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "v1", "plugins": {"traffic-split": split}}},
    }, plugins={**PLUGINS, "opentelemetry": OpenTelemetryPlugin, "logspy": LogSpy})
    exporter = InMemorySpanExporter()
    gw.gateway.services.instances(OpenTelemetryPlugin)[0].provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert (await gw.client.get("/", headers={"x-canary": "1"})).json() == {"served_by": "v2"}
    assert (await gw.client.get("/")).json() == {"served_by": "v1"}
    with trio.fail_after(5):
        while len([s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]) < 2:
            await trio.sleep(0.01)
    clients = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.attributes["triogate.upstream"] for s in clients] == ["v2", "v1"]
    assert [s.attributes["server.port"] for s in clients] == [v2.port, v1.port]
    assert [(name, target, extra.get("split_rule")) for name, target, extra in seen] == [
        ("v2", v2.url, 0), ("v1", v1.url, None)]
