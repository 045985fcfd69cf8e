"""Vary: variants selected by request headers; Vary: * never matches."""

from __future__ import annotations

from triogate import Response


async def test_variants_by_header(upstream_factory, cached, status_of, calls) -> None:
    async def handler(req):
        lang = req.headers.get("accept-language") or "none"
        return Response(200, [("cache-control", "max-age=60"), ("vary", "Accept-Language")], lang.encode())

    up = await upstream_factory(handler)
    gw = await cached(up)
    r = await gw.client.get("/v", headers={"accept-language": "en"})
    assert r.content == b"en" and "fwd=uri-miss" in status_of(r)
    r = await gw.client.get("/v", headers={"accept-language": "de"})
    assert r.content == b"de" and "fwd=vary-miss" in status_of(r)
    r = await gw.client.get("/v")
    assert r.content == b"none" and "fwd=vary-miss" in status_of(r)
    for lang in ("en", "de"):
        r = await gw.client.get("/v", headers={"accept-language": lang})
        assert r.content == lang.encode() and "hit" in status_of(r)
    r = await gw.client.get("/v")
    assert r.content == b"none" and "hit" in status_of(r)
    assert calls(up, "/v") == 3


async def test_vary_values_are_normalized(upstream_factory, cached, status_of) -> None:
    async def handler(req):
        return Response(200, [("cache-control", "max-age=60"), ("vary", "accept-encoding, x-a")], b"x")

    gw = await cached(await upstream_factory(handler))
    await gw.client.get("/n", headers=[("accept-encoding", "gzip,  br"), ("x-a", "1")])
    r = await gw.client.get("/n", headers=[("accept-encoding", "gzip"), ("accept-encoding", "br"), ("x-a", "1")])
    assert "hit" in status_of(r)


async def test_vary_star_is_never_stored(upstream_factory, cached, status_of, calls) -> None:
    async def handler(req):
        return Response(200, [("cache-control", "max-age=60"), ("vary", "*")], b"x")

    up = await upstream_factory(handler)
    gw = await cached(up)
    await gw.client.get("/s")
    r = await gw.client.get("/s")
    assert "detail=vary-star" in status_of(r) and calls(up, "/s") == 2
