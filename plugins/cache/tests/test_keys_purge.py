"""Cache keys (query params, headers, route) and purging by key or prefix."""

from __future__ import annotations

import re

from triogate import Response
from triogate_cache import Cache


async def echo_target(req):
    return Response(200, [("cache-control", "max-age=600")], f"{req.path}?{req.query}".encode())


def plugin_of(gw) -> Cache:
    return next(p for p in gw.gateway.pipeline.services.plugins if isinstance(p, Cache))


async def test_ignored_query_params(upstream_factory, cached, status_of, calls) -> None:
    up = await upstream_factory(echo_target)
    gw = await cached(up, cache={"ignore_query": ["utm_source", "utm_medium"]})
    await gw.client.get("/q?id=1&utm_source=a")
    r = await gw.client.get("/q?id=1&utm_source=b&utm_medium=c")
    assert "hit" in status_of(r) and r.content == b"/q?id=1&utm_source=a"
    assert "fwd=uri-miss" in status_of(await gw.client.get("/q?id=2&utm_source=a"))


async def test_only_listed_query_params(upstream_factory, cached, status_of) -> None:
    gw = await cached(await upstream_factory(echo_target), cache={"key_query": ["id"]})
    await gw.client.get("/q?id=1&x=1")
    assert "hit" in status_of(await gw.client.get("/q?x=2&id=1"))
    assert "fwd=uri-miss" in status_of(await gw.client.get("/q?id=2&x=1"))


async def test_query_is_part_of_the_key_by_default(upstream_factory, cached, status_of) -> None:
    gw = await cached(await upstream_factory(echo_target))
    await gw.client.get("/q?a=1")
    assert "fwd=uri-miss" in status_of(await gw.client.get("/q?a=2"))
    assert "hit" in status_of(await gw.client.get("/q?a=1"))


async def test_key_headers(upstream_factory, cached, status_of) -> None:
    gw = await cached(await upstream_factory(echo_target), cache={"key_headers": ["X-Tenant"]})
    await gw.client.get("/t", headers={"x-tenant": "a"})
    assert "fwd=uri-miss" in status_of(await gw.client.get("/t", headers={"x-tenant": "b"}))
    assert "hit" in status_of(await gw.client.get("/t", headers={"x-tenant": "a"}))


async def test_a_path_cannot_forge_another_key(upstream_factory, cached, status_of) -> None:
    gw = await cached(await upstream_factory(echo_target), cache={"expose_key": True})
    r = await gw.client.get("/a%7Cr")
    key = re.search(r'key="([^"]*)"', status_of(r)).group(1)
    assert "|" not in key.split("|")[0]


async def test_purge_by_key_and_prefix(upstream_factory, cached, status_of) -> None:
    gw = await cached(await upstream_factory(echo_target), cache={"expose_key": True})
    r = await gw.client.get("/users/1")
    key = re.search(r'key="([^"]*)"', status_of(r)).group(1)
    origin = f"127.0.0.1:{gw.port}"  # the request's authority: a non-default port is part of the key
    assert key == f"{origin}/users/1|r"
    for p in ("/users/2", "/users/3?x=1", "/orders/1"):
        await gw.client.get(p)
    cache = plugin_of(gw)
    assert await cache.purge(key) == 1
    assert "fwd=uri-miss" in status_of(await gw.client.get("/users/1"))
    assert await cache.purge_prefix(f"{origin}/users/") == 3
    assert "fwd=uri-miss" in status_of(await gw.client.get("/users/3?x=1"))
    assert "hit" in status_of(await gw.client.get("/orders/1"))
    assert await cache.invalidate(origin, "/orders/1") == 1
    assert "fwd=uri-miss" in status_of(await gw.client.get("/orders/1"))
    assert await cache.purge_prefix("") == 2  # /users/3?x=1 and /orders/1, stored again above


async def test_purge_reaches_every_variant(upstream_factory, cached, status_of) -> None:
    async def varying(req):
        return Response(200, [("cache-control", "max-age=600"), ("vary", "accept")], b"x")

    gw = await cached(await upstream_factory(varying))
    await gw.client.get("/v", headers={"accept": "a"})
    await gw.client.get("/v", headers={"accept": "b"})
    assert await plugin_of(gw).purge(f"127.0.0.1:{gw.port}/v|r") == 3  # the Vary index and both variants
    assert "fwd=uri-miss" in status_of(await gw.client.get("/v", headers={"accept": "a"}))


async def test_head_is_answered_from_a_stored_get(upstream_factory, cached, status_of, calls) -> None:
    up = await upstream_factory(echo_target)
    gw = await cached(up)
    r = await gw.client.request("HEAD", "/h")
    assert "fwd=uri-miss" in status_of(r) and "detail=head" in status_of(r)
    await gw.client.get("/h")
    r = await gw.client.request("HEAD", "/h")
    assert r.status == 200 and r.content == b"" and "hit" in status_of(r)
    assert r.headers["content-length"] == "3"
    assert calls(up, "/h") == 2


async def test_cache_survives_a_config_reload(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(echo_target)
    gw = await cached(up)
    await gw.client.get("/keep")
    cfg = {"upstreams": {"u": {"targets": [{"url": up.url}]}},
           "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"cache": {"x_cache_status": True}}}}}
    assert await gw.reload(cfg) == []
    r = await gw.client.get("/keep")
    assert "hit" in status_of(r) and r.headers["x-cache-status"] == "Hit"
