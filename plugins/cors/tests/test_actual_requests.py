"""Actual (non-preflight) cross-origin requests: headers added in post_response."""

import triogate
from triogate.testing import UpstreamServer

APP = "https://app.example.com"


async def test_allowed_origin_gets_cors_headers(make_gateway, upstream: UpstreamServer) -> None:
    gw = await make_gateway({"origins": [APP], "credentials": True, "exposed_headers": ["X-Total", "ETag"]})
    r = await gw.client.get("/api/items", headers={"origin": APP})
    assert r.status == 200 and r.json()["path"] == "/items"
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "X-Total, ETag"
    assert r.headers["vary"] == "Origin"


async def test_refused_origin_is_served_without_cors_headers(make_gateway) -> None:
    gw = await make_gateway({"origins": [APP]})
    r = await gw.client.get("/api/items", headers={"origin": "https://evil.example"})
    assert r.status == 200  # the browser, not the gateway, withholds the response from the page
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"
    r = await gw.client.get("/api/items")  # same-origin or non-browser: no Origin header
    assert "access-control-allow-origin" not in r.headers and r.headers["vary"] == "Origin"


async def test_wildcard_never_with_credentials(make_gateway) -> None:
    gw = await make_gateway({"origins": ["*"]})
    r = await gw.client.get("/api/items", headers={"origin": "https://x.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert "vary" not in r.headers  # the answer does not depend on the origin
    gw = await make_gateway({"origins": ["https://x.example"], "origin_regexes": [".*"], "credentials": True})
    r = await gw.client.get("/api/items", headers={"origin": "https://y.example"})
    assert r.headers["access-control-allow-origin"] == "https://y.example"


async def test_upstream_cors_headers_are_replaced_and_vary_merged(upstream_factory, gateway_factory) -> None:
    from triogate_cors import CorsPlugin

    async def handler(req: triogate.Request) -> triogate.Response:
        return triogate.Response(200, [("access-control-allow-origin", "*"), ("access-control-allow-credentials",
                                 "true"), ("vary", "Accept-Encoding"), ("content-length", "2")], b"{}")

    up = await upstream_factory(handler)
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": up.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"cors": {"origins": [APP]}}}},
    }, plugins={"cors": CorsPlugin})
    r = await gw.client.get("/x", headers={"origin": APP})
    assert r.headers.get_all("access-control-allow-origin") == [APP]
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["vary"] == "Accept-Encoding, Origin"
    r = await gw.client.get("/x", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers  # the upstream's "*" does not leak through


async def test_gateway_errors_carry_cors_headers(make_gateway) -> None:
    gw = await make_gateway({"origins": [APP]})
    r = await gw.client.get("/nowhere", headers={"origin": APP})
    assert r.status == 404 and r.headers["access-control-allow-origin"] == APP
