"""The Redis store: shared by several gateways, invalidation, purge, Vary, and Redis going down."""

from __future__ import annotations

import trio
from triogate import Response
from triogate.testing import RedisServer
from triogate_cache import Cache


def counting(cc: str = "max-age=60", vary: str | None = None):
    state = {"n": 0}

    async def handler(req):
        if req.method != "GET":
            return Response(204)
        headers = [("cache-control", cc), ("etag", '"e"')]
        if vary:
            headers.append(("vary", vary))
        if req.headers.get("if-none-match") == '"e"':
            return Response(304, headers)
        state["n"] += 1
        return Response(200, headers, f"v{state['n']}:{req.headers.get('accept') or ''}".encode())

    return handler


def redis_cache(redis_server, **extra):
    return {"store": "redis", "redis": {"url": redis_server.url, "timeout": 0.5, "health_check_interval": 0.2},
            **extra}


def plugin_of(gw) -> Cache:
    return next(p for p in gw.gateway.pipeline.services.plugins if isinstance(p, Cache))


async def test_two_gateways_share_one_redis(redis_server, upstream_factory, cached, status_of, calls) -> None:
    up = await upstream_factory(counting())
    gw1 = await cached(up, cache=redis_cache(redis_server))
    gw2 = await cached(up, cache=redis_cache(redis_server))
    host = {"host": "api.example"}  # one origin behind both gateways (their test ports differ)
    r1 = await gw1.client.get("/shared", headers=host)
    assert "stored" in status_of(r1)
    r2 = await gw2.client.get("/shared", headers=host)
    assert r2.content == b"v1:" and status_of(r2).startswith("triogate; hit; ttl=")
    assert calls(up, "/shared") == 1
    # an unsafe method through one gateway invalidates for both
    await gw2.client.post("/shared", body=b"x", headers=host)
    r = await gw1.client.get("/shared", headers=host)
    assert r.content == b"v2:" and "fwd=uri-miss" in status_of(r)
    # entries expire in Redis: freshness (60 s) + stale_retention (3600 s)
    ttl = await redis_server.command("PTTL", "triogate:cache:{api.example/shared}|r")
    assert 3_650_000 < int(ttl.strip().lstrip(b":")) <= 3_660_000


async def test_vary_revalidation_and_purge_in_redis(redis_server, upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(counting("max-age=0", vary="accept"))
    gw = await cached(up, cache=redis_cache(redis_server))
    await gw.client.get("/v", headers={"accept": "a"})
    r = await gw.client.get("/v", headers={"accept": "b"})
    assert "fwd=vary-miss" in status_of(r)
    r = await gw.client.get("/v", headers={"accept": "a"})
    assert status_of(r).startswith("triogate; fwd=stale; fwd-status=304; stored") and r.content == b"v1:a"
    cache = plugin_of(gw)
    assert await cache.purge_prefix(f"127.0.0.1:{gw.port}/v") == 3
    assert "fwd=uri-miss" in status_of(await gw.client.get("/v", headers={"accept": "a"}))
    assert await cache.purge(f"127.0.0.1:{gw.port}/v|r") == 2


async def test_redis_down_serves_from_upstream_and_recovers(redis_server, upstream_factory, cached,
                                                           status_of, calls) -> None:
    up = await upstream_factory(counting())
    gw = await cached(up, cache=redis_cache(redis_server))
    await gw.client.get("/d")
    assert "hit" in status_of(await gw.client.get("/d"))
    await redis_server.stop()
    with trio.fail_after(10):
        for _ in range(3):
            r = await gw.client.get("/d")
            assert r.status == 200
            assert status_of(r) == "triogate; fwd=uri-miss; fwd-status=200; detail=store-unavailable"
    assert calls(up, "/d") == 4
    await redis_server.start()
    cache = plugin_of(gw)
    assert await cache.store.client.wait_state("up", 10)
    with trio.fail_after(10):
        await gw.client.get("/d")
        r = await gw.client.get("/d")
    assert "hit" in status_of(r)


async def test_gateway_starts_while_redis_is_down(redis_server, upstream_factory, cached, status_of) -> None:
    await redis_server.stop()
    up = await upstream_factory(counting())
    with trio.fail_after(10):
        gw = await cached(up, cache=redis_cache(redis_server))
        r = await gw.client.get("/x")
    assert r.status == 200 and "detail=store-unavailable" in status_of(r)


async def test_an_invalidation_missed_while_redis_is_down_is_replayed(upstream_factory, cached, status_of,
                                                                      calls) -> None:
    """A POST while Redis is down cannot invalidate; Redis that comes back with its data (persistence here;
    a promoted replica with Sentinel or Cluster) still holds the entry. The next lookup replays the
    invalidation first, so the response stored before the write is not served after it."""
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"])
    try:
        await server.start()
        up = await upstream_factory(counting())
        gw = await cached(up, cache=redis_cache(server))
        await gw.client.get("/p")
        assert status_of(await gw.client.get("/p")).startswith("triogate; hit")
        await server.stop()  # SIGTERM: the entry is on disk
        with trio.fail_after(10):
            assert (await gw.client.post("/p", body=b"x")).status == 204  # the write went through; no store
            await server.start()
            assert await plugin_of(gw).store.client.wait_state("up", 10)
            assert await server.command("EXISTS", f"triogate:cache:{{127.0.0.1:{gw.port}/p}}|r") == b":1"
            r = await gw.client.get("/p")
        assert r.content == b"v2:" and "fwd=uri-miss" in status_of(r), (r.content, status_of(r))
        assert status_of(await gw.client.get("/p")).startswith("triogate; hit")  # stored again, after the write
        assert calls(up, "/p") == 3  # GET, POST, GET
    finally:
        with trio.CancelScope(shield=True):
            await server.aclose()
