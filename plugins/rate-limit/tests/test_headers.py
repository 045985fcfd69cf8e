"""Response headers on every response, 429 problem+json with Retry-After, header switches."""

import re

from triogate import Plugin, Response, hookimpl


async def test_headers_on_success_and_on_429(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["2/minute", "100/hour"], "key": "ip"}), plugins=plugins)
    r = await gw.client.get("/a")
    assert r.status == 200
    assert r.headers.get("ratelimit-policy") == '"ip-minute";q=2;w=60,"ip-hour";q=100;w=3600'
    m = re.fullmatch(r'"ip-minute";r=1;t=(\d+),"ip-hour";r=99;t=(\d+)', r.headers.get("ratelimit"))
    assert m and 0 < int(m.group(1)) <= 60 and 0 < int(m.group(2)) <= 3600
    assert r.headers.get("x-ratelimit-limit-minute") == "2" and r.headers.get("x-ratelimit-remaining-minute") == "1"
    assert r.headers.get("x-ratelimit-limit-hour") == "100" and r.headers.get("x-ratelimit-remaining-hour") == "99"
    await gw.client.get("/a")
    r = await gw.client.get("/a")
    assert r.status == 429
    assert r.headers.get("content-type") == "application/problem+json"
    doc = r.json()
    assert doc["type"] == "https://iana.org/assignments/http-problem-types#quota-exceeded"
    assert doc["status"] == 429 and doc["violated-policies"] == ["ip-minute"] and doc["request_id"]
    retry = int(r.headers.get("retry-after"))
    t = int(re.match(r'"ip-minute";r=0;t=(\d+)', r.headers.get("ratelimit")).group(1))
    assert t <= retry <= 120  # never earlier than the end of the effective window (draft section 6)
    assert r.headers.get("x-ratelimit-remaining-minute") == "0"
    assert r.headers.get("x-ratelimit-remaining-hour") == "98"  # the rejected request did not count


async def test_headers_can_be_switched_off(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "key": "ip", "headers": False,
                                             "legacy_headers": False}), plugins=plugins)
    r = await gw.client.get("/a")
    assert not [k for k, _ in r.headers.items() if "ratelimit" in k.lower()]
    r = await gw.client.get("/a")
    assert r.status == 429 and r.headers.get("retry-after")
    gw2 = await gateway_factory(route_config({"limits": ["30/30s"], "key": "ip", "legacy_headers": False}),
                                plugins=plugins)
    r = await gw2.client.get("/a")
    assert r.headers.get("ratelimit-policy") == '"ip-30s";q=30;w=30' and "x-ratelimit-limit-30s" not in r.headers


async def test_non_standard_window_legacy_name(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["30/30s"], "key": "ip"}), plugins=plugins)
    r = await gw.client.get("/a")
    assert r.headers.get("x-ratelimit-limit-30s") == "30" and r.headers.get("x-ratelimit-remaining-30s") == "29"


async def test_headers_on_responses_made_by_later_plugins(gateway_factory, route_config, plugins):
    class Teapot(Plugin):
        priority = 100

        @hookimpl
        async def transform(self, ctx):
            return Response(418, [("content-length", "0")], b"")

    cfg = route_config({"limits": ["5/minute"], "key": "ip"})
    cfg["routes"]["r"]["plugins"]["teapot"] = {}
    gw = await gateway_factory(cfg, plugins={**plugins, "teapot": Teapot})
    r = await gw.client.get("/a")
    assert r.status == 418 and r.headers.get("x-ratelimit-remaining-minute") == "4"


async def test_most_constrained_policy_wins_kong_headers(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({
        "limits": ["10/minute"], "key": "ip", "policies": [{"limits": ["3/minute"], "key": "route"}]}),
        plugins=plugins)
    r = await gw.client.get("/a")
    assert r.headers.get("x-ratelimit-limit-minute") == "3" and r.headers.get("x-ratelimit-remaining-minute") == "2"
    assert r.headers.get("ratelimit-policy") == '"ip-minute";q=10;w=60,"route-minute";q=3;w=60'


async def test_no_headers_when_the_request_never_reached_the_limiter(gateway_factory, route_config, plugins):
    class Deny(Plugin):
        priority = 1200

        @hookimpl
        async def auth(self, ctx):
            return ctx.problem(403, "no")

    cfg = route_config({"limits": ["5/minute"], "key": "ip"})
    cfg["routes"]["r"]["plugins"]["deny"] = {}
    gw = await gateway_factory(cfg, plugins={**plugins, "deny": Deny})
    r = await gw.client.get("/a")
    assert r.status == 403 and "ratelimit" not in r.headers
