"""Preflights (OPTIONS + Origin + Access-Control-Request-Method) are answered by the gateway."""

import pytest
from triogate.testing import UpstreamServer

APP = "https://app.example.com"


def preflight(origin: str = APP, method: str = "PUT", headers: str | None = None) -> dict[str, str]:
    h = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        h["access-control-request-headers"] = headers
    return h


@pytest.mark.parametrize("where", ["global", "route"])
async def test_allowed_preflight_is_answered_without_reaching_auth_or_upstream(
        make_gateway, upstream: UpstreamServer, challenge_auth, where: str) -> None:
    gw = await make_gateway({"origins": [APP], "credentials": True, "max_age": 600,
                             "headers": ["Authorization", "Content-Type"]}, where=where, auth=True)
    r = await gw.client.request("OPTIONS", "/api/items", headers=preflight(headers="authorization, content-type"))
    assert r.status == 204, r.content
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-methods"] == "GET, HEAD, PUT, PATCH, POST, DELETE"
    assert r.headers["access-control-allow-headers"] == "Authorization, Content-Type"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-max-age"] == "600"
    assert "Origin" in r.headers["vary"]
    assert r.content == b""
    assert challenge_auth.calls == 0
    assert upstream.requests == []
    # the same route without the preflight headers does go through auth (and fails it)
    r = await gw.client.get("/api/items", headers={"origin": APP})
    assert r.status == 401 and challenge_auth.calls == 1
    # ... and the 401 still carries the CORS headers, so the page's script can read it
    assert r.headers["access-control-allow-origin"] == APP


async def test_wildcard_origin_without_credentials(make_gateway) -> None:
    gw = await make_gateway({"origins": ["*"]})
    r = await gw.client.request("OPTIONS", "/api/x", headers=preflight(origin="https://anyone.example"))
    assert r.status == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


async def test_regex_origins_are_anchored(make_gateway) -> None:
    gw = await make_gateway({"origin_regexes": [r"https://[a-z0-9-]+\.example\.com"], "credentials": True})
    ok = await gw.client.request("OPTIONS", "/api/x", headers=preflight(origin="https://shop.example.com"))
    assert ok.status == 204 and ok.headers["access-control-allow-origin"] == "https://shop.example.com"
    for evil in ("https://shop.example.com.evil.net", "https://evil.net/?https://a.example.com",
                 "http://shop.example.com", "xhttps://shop.example.com"):
        r = await gw.client.request("OPTIONS", "/api/x", headers=preflight(origin=evil))
        assert r.status == 403, evil
        assert "access-control-allow-origin" not in r.headers


async def test_refused_origin_method_and_headers(make_gateway, upstream: UpstreamServer, challenge_auth) -> None:
    gw = await make_gateway({"origins": [APP], "methods": ["GET", "POST"], "headers": ["Content-Type"]}, auth=True)
    r = await gw.client.request("OPTIONS", "/api/x", headers=preflight(origin="https://other.example.com",
                                                                       method="GET"))
    assert r.status == 403
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert "origin" in body["detail"] and body["request_id"] == r.headers["x-request-id"]
    assert "access-control-allow-origin" not in r.headers and "Origin" in r.headers["vary"]
    r = await gw.client.request("OPTIONS", "/api/x", headers=preflight(method="DELETE"))
    assert r.status == 403 and "'DELETE'" in r.json()["detail"]
    r = await gw.client.request("OPTIONS", "/api/x", headers=preflight(method="POST", headers="content-type, x-secret"))
    assert r.status == 403 and r.json()["detail"].endswith("x-secret")
    assert challenge_auth.calls == 0 and upstream.requests == []


async def test_requested_headers_are_reflected_when_none_are_listed(make_gateway) -> None:
    gw = await make_gateway({"origins": [APP]})
    r = await gw.client.request("OPTIONS", "/api/x", headers=preflight(headers="X-Trace, Content-Type"))
    assert r.status == 204
    assert r.headers["access-control-allow-headers"] == "X-Trace, Content-Type"
    r = await gw.client.request("OPTIONS", "/api/x", headers=preflight())
    assert "access-control-allow-headers" not in r.headers


async def test_plain_options_is_proxied(make_gateway, upstream: UpstreamServer) -> None:
    gw = await make_gateway({"origins": [APP]})
    r = await gw.client.request("OPTIONS", "/api/x", headers={"origin": APP})  # no Access-Control-Request-Method
    assert r.status == 200 and r.json()["method"] == "OPTIONS"
    assert len(upstream.requests) == 1


async def test_route_instance_needs_options_in_route_methods(make_gateway) -> None:
    # a route instance runs after the route matched: a route limited to GET never sees the OPTIONS
    gw = await make_gateway({"origins": [APP]}, where="route", methods=["GET"])
    assert (await gw.client.request("OPTIONS", "/api/x", headers=preflight(method="GET"))).status == 405
    gw = await make_gateway({"origins": [APP]}, where="route", methods=["GET", "OPTIONS"])
    assert (await gw.client.request("OPTIONS", "/api/x", headers=preflight(method="GET"))).status == 204
