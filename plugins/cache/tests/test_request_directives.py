"""Request Cache-Control: no-cache, no-store, max-age, max-stale, min-fresh, only-if-cached (and Pragma)."""

from __future__ import annotations

from triogate import Response


def counting(cc: str = "max-age=60", etag: bool = False):
    n = {"count": 0}

    async def handler(req):
        n["count"] += 1
        headers = [("cache-control", cc)]
        if etag:
            headers.append(("etag", '"e1"'))
            if req.headers.get("if-none-match") == '"e1"':
                return Response(304, headers)
        return Response(200, headers, f"v{n['count']}".encode())

    return handler


async def test_no_cache_forces_validation(upstream_factory, cached, status_of, calls) -> None:
    up = await upstream_factory(counting(etag=True))
    gw = await cached(up)
    await gw.client.get("/a")
    r = await gw.client.get("/a", headers={"cache-control": "no-cache"})
    assert r.status == 200 and r.content == b"v1"
    assert status_of(r).startswith("triogate; fwd=request; fwd-status=304; stored")
    assert up.requests[-1].headers.get("if-none-match") == '"e1"'
    r2 = await gw.client.get("/a", headers={"pragma": "no-cache"})
    assert "fwd=request" in status_of(r2)
    assert calls(up, "/a") == 3


async def test_no_store_request_uses_but_never_stores(upstream_factory, cached, status_of, calls) -> None:
    up = await upstream_factory(counting())
    gw = await cached(up)
    r1 = await gw.client.get("/b", headers={"cache-control": "no-store"})
    assert "detail=request-no-store" in status_of(r1)
    r2 = await gw.client.get("/b")
    assert r2.content == b"v2" and "stored" in status_of(r2)
    r3 = await gw.client.get("/b", headers={"cache-control": "no-store"})
    assert r3.content == b"v2" and "hit" in status_of(r3)


async def test_max_age_limits_the_acceptable_age(upstream_factory, cached, status_of, mock_clock) -> None:
    up = await upstream_factory(counting())
    gw = await cached(up)
    await gw.client.get("/c")
    mock_clock.jump(20)
    assert "hit" in status_of(await gw.client.get("/c", headers={"cache-control": "max-age=30"}))
    r = await gw.client.get("/c", headers={"cache-control": "max-age=10"})
    assert r.content == b"v2" and "fwd=request" in status_of(r)


async def test_min_fresh(upstream_factory, cached, status_of, mock_clock) -> None:
    up = await upstream_factory(counting())
    gw = await cached(up)
    await gw.client.get("/d")
    mock_clock.jump(40)  # 20 s of freshness left
    assert "hit" in status_of(await gw.client.get("/d", headers={"cache-control": "min-fresh=15"}))
    r = await gw.client.get("/d", headers={"cache-control": "min-fresh=30"})
    assert r.content == b"v2" and "fwd=request" in status_of(r)


async def test_max_stale(upstream_factory, cached, status_of, mock_clock) -> None:
    up = await upstream_factory(counting("max-age=10"))
    gw = await cached(up)
    await gw.client.get("/e")
    mock_clock.jump(25)  # stale for 15 s
    r = await gw.client.get("/e", headers={"cache-control": "max-stale=20"})
    assert r.content == b"v1" and "hit" in status_of(r) and "detail=max-stale" in status_of(r)
    assert r.headers["age"] == "25"
    r = await gw.client.get("/e", headers={"cache-control": "max-stale"})
    assert r.content == b"v1"
    r = await gw.client.get("/e", headers={"cache-control": "max-stale=5"})
    assert r.content == b"v2"


async def test_max_stale_does_not_override_must_revalidate(upstream_factory, cached, mock_clock) -> None:
    for cc in ("max-age=10, must-revalidate", "max-age=10, proxy-revalidate", "s-maxage=10"):
        up = await upstream_factory(counting(cc))
        gw = await cached(up)
        await gw.client.get("/f")
        mock_clock.jump(11)
        r = await gw.client.get("/f", headers={"cache-control": "max-stale=100"})
        assert r.content == b"v2", cc


async def test_only_if_cached(upstream_factory, cached, status_of, calls, mock_clock) -> None:
    up = await upstream_factory(counting("max-age=10"))
    gw = await cached(up)
    miss = await gw.client.get("/g", headers={"cache-control": "only-if-cached"})
    assert miss.status == 504
    assert miss.headers["content-type"] == "application/problem+json"
    assert status_of(miss) == "triogate; fwd=miss; detail=only-if-cached"
    assert calls(up, "/g") == 0
    await gw.client.get("/g")
    hit = await gw.client.get("/g", headers={"cache-control": "only-if-cached"})
    assert hit.status == 200 and hit.content == b"v1"
    mock_clock.jump(11)
    stale = await gw.client.get("/g", headers={"cache-control": "only-if-cached"})
    assert stale.status == 504 and calls(up, "/g") == 1
    ok = await gw.client.get("/g", headers={"cache-control": "only-if-cached, max-stale"})
    assert ok.status == 200 and ok.content == b"v1"


async def test_immutable_ignores_reload_max_age_zero(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(counting("max-age=600, immutable"))
    gw = await cached(up)
    await gw.client.get("/i")
    r = await gw.client.get("/i", headers={"cache-control": "max-age=0"})
    assert "hit" in status_of(r)
    r = await gw.client.get("/i", headers={"cache-control": "no-cache"})
    assert r.content == b"v2"
