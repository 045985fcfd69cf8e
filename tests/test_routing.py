"""Routing: hosts (wildcards), prefix/exact/template paths, methods (405), headers, most
specific wins, strip_prefix/rewrite, and one normalized path for matching and forwarding."""

from __future__ import annotations

import attrs
import pytest

import triogate
from triogate.testing import raw_request


@attrs.define(frozen=True)
class DenyConfig:
    pass


class Deny(triogate.Plugin):
    """Stands in for an auth plugin guarding a route: every request it sees is refused."""

    priority = 1000
    Config = DenyConfig

    @triogate.hookimpl
    async def auth(self, ctx):
        return ctx.problem(403, "denied by the admin route's guard")


@pytest.fixture
async def two_upstreams(upstream_factory):
    return await upstream_factory(name="a"), await upstream_factory(name="b")


async def get(gw, path: str, host: str = "x", method: str = "GET") -> tuple[int, bytes]:
    raw = await raw_request(gw.port, f"{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode(),
                            timeout=3)
    return int(raw[9:12]), raw


async def test_host_matching_exact_wildcard_and_port(two_upstreams, gateway_factory):
    a, b = two_upstreams
    gw = await gateway_factory({
        "upstreams": {"a": {"targets": [{"url": a.url}]}, "b": {"targets": [{"url": b.url}]}},
        "routes": {"exact": {"hosts": ["api.example.com"], "upstream": "a"},
                   "wild": {"hosts": ["*.example.com"], "upstream": "b"}},
    })
    assert (await get(gw, "/1", "api.example.com"))[0] == 200
    assert (await get(gw, "/2", "API.Example.COM:8080"))[0] == 200
    assert (await get(gw, "/3", "shop.example.com"))[0] == 200
    assert (await get(gw, "/4", "x.y.example.com"))[0] == 200
    assert (await get(gw, "/5", "example.com"))[0] == 404
    assert (await get(gw, "/6", "evilexample.com"))[0] == 404
    assert [r.path for r in a.requests] == ["/1", "/2"]
    assert [r.path for r in b.requests] == ["/3", "/4"]


async def test_prefix_exact_and_template_paths(upstream, gateway_factory):
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {
            "prefix": {"paths": ["/api"], "upstream": "u"},
            "exact": {"paths": ["/health"], "path_match": "exact", "upstream": "u"},
            "tmpl": {"paths": ["/users/{id}/orders/{order}"], "upstream": "u",
                     "rewrite": "/v2/orders/{order}?user={id}"},
        },
    })
    assert (await get(gw, "/api"))[0] == 200
    assert (await get(gw, "/api/x/y"))[0] == 200
    assert (await get(gw, "/apix"))[0] == 404
    assert (await get(gw, "/health"))[0] == 200
    assert (await get(gw, "/health/x"))[0] == 404
    assert (await get(gw, "/users/42/orders/7"))[0] == 200
    assert (await get(gw, "/users/42/orders"))[0] == 404
    paths = [r.path + ("?" + r.query if r.query else "") for r in upstream.requests]
    assert paths == ["/api", "/api/x/y", "/health", "/v2/orders/7?user=42"]


async def test_methods_405_with_allow(upstream, gateway_factory):
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"read": {"paths": ["/items"], "methods": ["GET", "HEAD"], "upstream": "u"},
                   "write": {"paths": ["/items"], "methods": ["POST"], "upstream": "u"}},
    })
    assert (await get(gw, "/items"))[0] == 200
    status, raw = await get(gw, "/items", method="DELETE")
    assert status == 405
    assert b"\r\nallow: GET, HEAD, POST\r\n" in raw
    assert b"application/problem+json" in raw
    assert (await get(gw, "/other", method="DELETE"))[0] == 404


async def test_header_matches(two_upstreams, gateway_factory):
    a, b = two_upstreams
    gw = await gateway_factory({
        "upstreams": {"a": {"targets": [{"url": a.url}]}, "b": {"targets": [{"url": b.url}]}},
        "routes": {"v1": {"paths": ["/api"], "upstream": "a"},
                   "v2": {"paths": ["/api"], "headers": {"X-Version": "2"}, "upstream": "b"}},
    })
    r = await gw.client.get("/api/x", headers={"x-version": "2"})
    assert r.status == 200
    r = await gw.client.get("/api/y", headers={"x-version": "3"})
    r = await gw.client.get("/api/z")
    assert [q.path for q in b.requests] == ["/api/x"]
    assert [q.path for q in a.requests] == ["/api/y", "/api/z"]


async def test_most_specific_route_wins(upstream_factory, gateway_factory):
    ups = [await upstream_factory(name=str(i)) for i in range(5)]
    gw = await gateway_factory({
        "upstreams": {f"u{i}": {"targets": [{"url": u.url}]} for i, u in enumerate(ups)},
        "routes": {
            "root": {"paths": ["/"], "upstream": "u0"},
            "api": {"paths": ["/api"], "upstream": "u1"},
            "users": {"paths": ["/api/users"], "upstream": "u2"},
            "me": {"paths": ["/api/users/me"], "path_match": "exact", "upstream": "u3"},
            "hosted": {"paths": ["/api"], "hosts": ["special.example"], "upstream": "u4"},
        },
    })
    cases = {"/": 0, "/other": 0, "/api/x": 1, "/api/users": 2, "/api/users/7": 2, "/api/users/me": 3,
             "/api/users/me/x": 2}
    for path, idx in cases.items():
        status, _ = await get(gw, path)
        assert status == 200
        assert ups[idx].requests[-1].path == path, (path, idx)
    await get(gw, "/api/users", host="special.example")
    assert ups[2].requests[-1].path == "/api/users"  # the longer path beats the host-bound shorter one
    await get(gw, "/api/other", host="special.example")
    assert ups[4].requests[-1].path == "/api/other"  # same path: the route with a host condition wins


async def test_strip_prefix_and_rewrite_with_rest(upstream, gateway_factory):
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {
            "strip": {"paths": ["/api/v1"], "strip_prefix": "/api/v1", "upstream": "u"},
            "rw": {"paths": ["/old"], "rewrite": "/new/{rest}", "upstream": "u"},
        },
    })
    for p in ("/api/v1", "/api/v1/users/1?x=%20y", "/old", "/old/a/b?q=1"):
        assert (await get(gw, p))[0] == 200
    got = [(r.path, r.query) for r in upstream.requests]
    assert got == [("/", ""), ("/users/1", "x=%20y"), ("/new/", ""), ("/new/a/b", "q=1")]


async def test_trailing_star_is_a_prefix_route(two_upstreams, gateway_factory):
    """``/svc/*`` (Kong, Traefik, KrakenD) means the prefix ``/svc``: it matches /svc and below, not /svcx."""
    svc, other = two_upstreams
    gw = await gateway_factory({
        "upstreams": {"svc": {"targets": [{"url": svc.url}]}, "other": {"targets": [{"url": other.url}]}},
        "routes": {
            "svc": {"paths": ["/svc/*"], "strip_prefix": "/svc", "upstream": "svc"},
            "tmpl": {"paths": ["/users/{id}/*"], "upstream": "svc"},
            "rest": {"paths": ["/*"], "upstream": "other"},
        },
    })
    for p in ("/svc", "/svc/", "/svc/a/b", "/users/7", "/users/7/orders/1", "/svcx", "/svc*", "/users"):
        assert (await get(gw, p))[0] == 200, p
    assert [r.path for r in svc.requests] == ["/", "/", "/a/b", "/users/7", "/users/7/orders/1"]
    assert [r.path for r in other.requests] == ["/svcx", "/svc*", "/users"]
    table = gw.gateway.pipeline.router.table()
    assert [(row["route"], row["path"], row["match"]) for row in table] == [
        ("tmpl", "/users/{id}/*", "prefix"), ("svc", "/svc/*", "prefix"), ("rest", "/*", "prefix")]


TRICKS = [
    "/public/../admin/secret",
    "/public/%2e%2e/admin/secret",
    "/public/%2E%2E/admin/secret",
    "/public/.%2e/admin/secret",
    "//admin/secret",
    "/%61dmin/secret",
    "/public/./../admin/secret",
    "/public/x/../../admin/secret",
]


@pytest.mark.parametrize("path", TRICKS)
async def test_encoding_tricks_cannot_reach_another_routes_upstream(path, two_upstreams, gateway_factory):
    public, admin = two_upstreams
    gw = await gateway_factory({
        "upstreams": {"public": {"targets": [{"url": public.url}]}, "admin": {"targets": [{"url": admin.url}]}},
        "routes": {"public": {"paths": ["/public"], "upstream": "public", "strip_prefix": "/public"},
                   "admin": {"paths": ["/admin"], "upstream": "admin", "plugins": {"deny": {}}}},
    }, plugins={"deny": Deny})
    status, _ = await get(gw, path)
    # the normalized path is /admin/secret: the admin route (and its guard) sees it
    assert status == 403
    assert public.requests == [] and admin.requests == []


@pytest.mark.parametrize("path", ["/public/..%2Fadmin/secret", "/public/..%5Cadmin/secret", "/public/..;/admin",
                                  "/public/%2e%2e%2fadmin", "/public/%00/x", "/../admin"])
async def test_ambiguous_paths_are_rejected(path, two_upstreams, gateway_factory):
    public, admin = two_upstreams
    gw = await gateway_factory({
        "upstreams": {"public": {"targets": [{"url": public.url}]}, "admin": {"targets": [{"url": admin.url}]}},
        "routes": {"public": {"paths": ["/public"], "upstream": "public"},
                   "admin": {"paths": ["/admin"], "upstream": "admin"}},
    })
    status, raw = await get(gw, path)
    assert status == 400, raw[:200]
    assert public.requests == [] and admin.requests == []


async def test_forwarded_path_is_the_normalized_one(upstream, gateway_factory):
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/files"], "upstream": "u"}},
    })
    for p in ("/files//a///b", "/files/./a/%62", "/files/%7euser", "/files/a/b/../c/"):
        assert (await get(gw, p))[0] == 200
    assert [r.path for r in upstream.requests] == ["/files/a/b", "/files/a/b", "/files/~user", "/files/a/c/"]


async def test_encoded_slash_is_refused_by_default_and_kept_encoded_on_request(upstream, gateway_factory):
    routes = {"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
              "routes": {"r": {"paths": ["/files"], "upstream": "u"}}}
    gw = await gateway_factory(routes)
    assert (await get(gw, "/files/a%2fb"))[0] == 400
    assert upstream.requests == []
    gw = await gateway_factory({**routes, "gateway": {"paths": {"encoded_slash": "keep"}}})
    assert (await get(gw, "/files/a%2fb"))[0] == 200
    assert [r.path for r in upstream.requests] == ["/files/a%2Fb"]


async def test_no_route_is_404_problem_json(gateway_factory):
    gw = await gateway_factory({"routes": {}})
    r = await gw.client.get("/whatever")
    assert r.status == 404
    doc = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert doc["status"] == 404 and doc["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(("value", "scheme", "expected"), [
    ("", "http", ("", "")),
    ("Example.COM", "http", ("example.com", "example.com")),
    ("example.com.", "http", ("example.com", "example.com")),
    ("example.com:80", "http", ("example.com", "example.com")),
    ("example.com:080", "http", ("example.com", "example.com")),
    ("example.com:80", "https", ("example.com", "example.com:80")),
    ("example.com:443", "https", ("example.com", "example.com")),
    ("example.com.:6666", "http", ("example.com", "example.com:6666")),
    ("[::1]", "http", ("[::1]", "[::1]")),
    ("[::1]:80", "http", ("[::1]", "[::1]")),
    ("[2001:DB8::1]:8080", "http", ("[2001:db8::1]", "[2001:db8::1]:8080")),
])
def test_normalize_authority(value, scheme, expected):
    from triogate.authority import normalize_authority

    assert normalize_authority(value, scheme) == expected


@pytest.mark.parametrize(("path", "refused", "view"), [
    ("/api/users", False, "/api/users"),
    ("/v1.0/a.txt", False, "/v1.0/a.txt"),
    ("/a%2Fb", True, None),
    ("/a%5Cb", True, None),
    ("/admin./x", True, None),
    ("/admin.", True, None),
    ("/a;v=1/b;x", False, "/a/b"),
    ("/a%3Bv=1/b", False, "/a/b"),
    ("/admin.;x/y", True, None),
])
def test_path_policy_screen(path, refused, view):
    from triogate.routing import PathPolicy

    why, seen = PathPolicy().screen(path)
    assert (why is not None) == refused
    if not refused:
        assert seen == view
    keep = PathPolicy("keep", "keep")
    assert keep.screen("/a%2Fb./c") == (None, "/a%2Fb./c")
