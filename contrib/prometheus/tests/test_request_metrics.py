"""Metric values after a known sequence of requests: 200s, 401/403, 429, cache miss/hit, upstream 502s."""

from __future__ import annotations

import triogate
from triogate.testing import free_port
from triogate_prometheus import PrometheusPlugin


class FakeAuth(triogate.Plugin):
    """x-key: good -> principal from x-user; bad -> 401 reason invalid_key; banned -> 403; none -> challenge."""

    priority = 1200

    @triogate.hookimpl
    async def auth(self, ctx):
        key = ctx.request.headers.get("x-key")
        if key is None:
            ctx.challenge('Key realm="test"')
        elif key == "good":
            ctx.principal = triogate.Principal(consumer=ctx.request.headers.get("x-user"))
        elif key == "banned":
            return ctx.problem(403, "banned")
        else:
            ctx.log_extra["reason"] = "invalid_key"
            return ctx.problem(401, "invalid key")


class FakeLimiter(triogate.Plugin):
    """Lets the first request through, then answers 429."""

    priority = 900
    seen = 0

    @triogate.hookimpl
    async def transform(self, ctx):
        FakeLimiter.seen += 1
        if FakeLimiter.seen > 1:
            return ctx.problem(429, "slow down", headers=[("retry-after", "1")])


class FakeCache(triogate.Plugin):
    """Second request served from 'store' with Cache-Status hit; the first is a stored miss."""

    priority = 100
    stored = False

    @triogate.hookimpl
    async def transform(self, ctx):
        if FakeCache.stored:
            return triogate.Response(200, [("cache-status", "triogate; hit; ttl=30")], b"cached")

    @triogate.hookimpl
    async def post_response(self, ctx, response):
        if ctx.short_circuit is None:
            FakeCache.stored = True
            response.headers.set("cache-status", 'upstream-cache; hit, triogate; fwd=miss; stored')


PLUGINS = {"prometheus": PrometheusPlugin, "fakeauth": FakeAuth, "limiter": FakeLimiter, "fakecache": FakeCache}


async def bad_gateway(request):
    await request.body.read(1 << 16)
    return triogate.Response(502, [("content-type", "text/plain")], b"upstream says no")


async def start(gateway_factory, upstream, upstream_factory, admin, **prom):
    FakeLimiter.seen = 0
    FakeCache.stored = False
    broken = await upstream_factory(bad_gateway)
    cfg = {
        "admin": admin,
        "plugins": {"prometheus": {"consumer_label": True, **prom}},
        "upstreams": {
            "users": {"targets": [{"url": upstream.url}]},
            "broken": {"targets": [{"url": broken.url}], "circuit_breaker": {"failures": 0}},
            "down": {"targets": [{"url": f"http://127.0.0.1:{free_port()}"}], "retries": 0,
                     "circuit_breaker": {"failures": 1, "open_seconds": 60}},
        },
        "routes": {
            "users": {"paths": ["/api/users"], "upstream": "users", "strip_prefix": "/api"},
            "private": {"paths": ["/private"], "upstream": "users", "plugins": {"fakeauth": {}}},
            "limited": {"paths": ["/limited"], "upstream": "users", "plugins": {"limiter": {}}},
            "cached": {"paths": ["/cached"], "upstream": "users", "plugins": {"fakecache": {}}},
            "broken": {"paths": ["/broken"], "upstream": "broken"},
            "down": {"paths": ["/down"], "upstream": "down"},
        },
    }
    return await gateway_factory(cfg, plugins=PLUGINS)


async def test_known_sequence(gateway_factory, upstream, upstream_factory, admin, metrics):
    gw = await start(gateway_factory, upstream, upstream_factory, admin)
    c = gw.client
    assert (await c.get("/api/users/1")).status == 200
    assert (await c.get("/api/users/2")).status == 200
    assert (await c.post("/api/users", body=b"hello")).status == 200
    assert (await c.get("/private")).status == 401
    assert (await c.get("/private", headers={"x-key": "nope"})).status == 401
    assert (await c.get("/private", headers={"x-key": "banned"})).status == 403
    assert (await c.get("/private", headers={"x-key": "good", "x-user": "alice"})).status == 200
    assert [(await c.get("/limited")).status for _ in range(3)] == [200, 429, 429]
    assert [(await c.get("/cached")).status for _ in range(2)] == [200, 200]
    assert (await c.get("/broken")).status == 502
    down = await c.get("/down")
    assert down.status in (502, 503)
    assert (await c.get("/nothing-here")).status == 404

    s = await metrics.scrape(gw)
    req = "triogate_requests_total"
    assert metrics.value(s, req, route="users", method="GET", status_class="2xx", consumer="") == 2
    assert metrics.value(s, req, route="users", method="POST", status_class="2xx", consumer="") == 1
    assert metrics.value(s, req, route="private", method="GET", status_class="4xx", consumer="") == 3
    assert metrics.value(s, req, route="private", method="GET", status_class="2xx", consumer="alice") == 1
    assert metrics.value(s, req, route="limited", method="GET", status_class="2xx", consumer="") == 1
    assert metrics.value(s, req, route="limited", method="GET", status_class="4xx", consumer="") == 2
    assert metrics.value(s, req, route="cached", method="GET", status_class="2xx", consumer="") == 2
    assert metrics.value(s, req, route="broken", method="GET", status_class="5xx", consumer="") == 1
    assert metrics.value(s, req, route="down", method="GET", status_class="5xx", consumer="") == 1
    assert metrics.value(s, req, route="", method="GET", status_class="4xx", consumer="") == 1
    total = sum(v for (n, _), v in s.items() if n == req)
    assert total == 15

    hist = "triogate_request_duration_seconds_count"
    assert metrics.value(s, hist, route="users", method="GET", status_class="2xx") == 2
    assert metrics.value(s, "triogate_request_duration_seconds_bucket", route="users", method="GET",
                 status_class="2xx", le="+Inf") == 2

    auth = "triogate_auth_failures_total"
    assert metrics.value(s, auth, route="private", plugin="fakeauth", reason="unauthenticated") == 1  # core 401
    assert metrics.value(s, auth, route="private", plugin="fakeauth", reason="invalid_key") == 1
    assert metrics.value(s, auth, route="private", plugin="fakeauth", reason="forbidden") == 1
    assert sum(v for (n, _), v in s.items() if n == auth) == 3

    assert metrics.value(s, "triogate_rate_limited_total", route="limited", plugin="limiter") == 2
    assert sum(v for (n, _), v in s.items() if n == "triogate_rate_limited_total") == 2

    assert metrics.value(s, "triogate_cache_requests_total", route="cached", result="miss") == 1
    assert metrics.value(s, "triogate_cache_requests_total", route="cached", result="hit") == 1

    up = "triogate_upstream_duration_seconds_count"
    assert metrics.value(s, up, route="users", upstream="users") == 3
    assert metrics.value(s, up, route="private", upstream="users") == 1
    assert metrics.value(s, up, route="broken", upstream="broken") == 1   # the upstream answered (502)
    assert metrics.value(s, up, route="down", upstream="down") == 0
    assert metrics.value(s, "triogate_upstream_errors_total", route="down", upstream="down") == 1
    assert metrics.value(s, "triogate_upstream_errors_total", route="broken", upstream="broken") == 0

    assert metrics.value(s, "triogate_request_bytes_total", route="users") == 5
    assert metrics.value(s, "triogate_response_bytes_total", route="users") > 0

    # gauges sampled at scrape time
    down_target = next(t.url for t in gw.gateway.pipeline.upstreams["down"].targets)
    assert metrics.value(s, "triogate_upstream_circuit_state", upstream="down", target=down_target, state="open") == 1
    assert metrics.value(s, "triogate_upstream_circuit_state", upstream="down", target=down_target, state="closed") == 0
    assert metrics.value(s, "triogate_upstream_circuit_state", upstream="users", target=upstream.url, state="closed") == 1
    assert metrics.value(s, "triogate_upstream_target_healthy", upstream="users", target=upstream.url) == 1
    assert metrics.value(s, "triogate_open_connections") >= 1   # the test client's keep-alive connection
    assert metrics.value(s, "triogate_config_version") == 1
    assert metrics.value(s, "triogate_requests_in_flight") == 0


async def test_consumer_label_is_bounded_and_optional(gateway_factory, upstream, upstream_factory, admin, metrics):
    gw = await start(gateway_factory, upstream, upstream_factory, admin, max_consumers=2)
    for user in ("alice", "bob", "carol", "dave", "alice"):
        r = await gw.client.get("/private", headers={"x-key": "good", "x-user": user})
        assert r.status == 200
    s = await metrics.scrape(gw)
    req = "triogate_requests_total"
    labels = {"route": "private", "method": "GET", "status_class": "2xx"}
    assert metrics.value(s, req, consumer="alice", **labels) == 2
    assert metrics.value(s, req, consumer="bob", **labels) == 1
    assert metrics.value(s, req, consumer="other", **labels) == 2
    assert metrics.value(s, req, consumer="carol", **labels) == 0

    # consumer_label = false: one series, consumer=""
    assert await gw.reload({"admin": admin, "plugins": {"prometheus": {}},
                            "upstreams": {"users": {"targets": [{"url": upstream.url}]}},
                            "routes": {"private": {"paths": ["/private"], "upstream": "users",
                                                   "plugins": {"fakeauth": {}}}}}) == []
    await gw.client.get("/private", headers={"x-key": "good", "x-user": "erin"})
    s = await metrics.scrape(gw)
    assert metrics.value(s, req, consumer="", **labels) == 1
    assert metrics.value(s, req, consumer="erin", **labels) == 0


async def test_reloads_and_config_version(gateway_factory, upstream, admin, metrics):
    base = {"admin": admin, "plugins": {"prometheus": {}},
            "upstreams": {"users": {"targets": [{"url": upstream.url}]}},
            "routes": {"users": {"paths": ["/api/users"], "upstream": "users"}}}
    gw = await gateway_factory(base, plugins={"prometheus": PrometheusPlugin})
    await gw.client.get("/api/users")
    assert await gw.reload(base) == []
    bad = {**base, "routes": {"users": {"paths": ["/api/users"], "upstream": "missing"}}}
    from triogate import ConfigError

    try:
        errors = await gw.reload(bad)
    except ConfigError as exc:  # the test kit parses the dict before the gateway sees it
        errors = exc.errors
    assert errors
    s = await metrics.scrape(gw)
    assert metrics.value(s, "triogate_config_reloads_total", outcome="ok") == 1
    assert metrics.value(s, "triogate_config_version") == 2
    # counters survive the reload: the request before it is still counted
    assert metrics.value(s, "triogate_requests_total", route="users", method="GET", status_class="2xx", consumer="") == 1
    # a failed reload that the gateway itself rejects (plugin config error)
    errors = await gw.reload({**base, "plugins": {"prometheus": {"max_consumers": 0}}})
    assert errors
    s = await metrics.scrape(gw)
    assert metrics.value(s, "triogate_config_reloads_total", outcome="failed") == 1
    assert metrics.value(s, "triogate_config_reloads_total", outcome="ok") == 1


async def test_metrics_need_the_admin_token(gateway_factory, upstream, admin, metrics):
    from triogate import HTTPClient

    gw = await gateway_factory({"admin": admin, "plugins": {"prometheus": {"path": "/prom"}},
                                "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
                                "routes": {"r": {"upstream": "u"}}}, plugins={"prometheus": PrometheusPlugin})
    client = HTTPClient(read_timeout=10.0)
    try:
        r = await client.fetch("GET", gw.gateway.admin.url + "/prom", timeout=10.0)
        assert r.status == 401
        r = await client.fetch("GET", gw.gateway.admin.url + "/metrics", timeout=10.0,
                               headers=[("authorization", f"Bearer {admin['token']}")])
        assert r.status == 404
    finally:
        await client.aclose()
    s = await metrics.scrape(gw, path="/prom")
    assert metrics.value(s, "triogate_config_version") == 1
