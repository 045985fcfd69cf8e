"""Purge and stats through the admin API (``admin_routes``)."""

from __future__ import annotations

from triogate import HTTPClient, Response

TOKEN = "cache-admin-token-0123456"


async def admin(gw, method: str, path: str, body: bytes | None = None):
    client = HTTPClient(read_timeout=10.0)
    try:
        return await client.fetch(method, gw.gateway.admin.url + path, body=body, timeout=10.0,
                                  headers=[("authorization", f"Bearer {TOKEN}")])
    finally:
        await client.aclose()


async def handler(req):
    return Response(200, [("cache-control", "max-age=600")], b"x")


async def test_purge_through_the_admin_api(upstream_factory, cached, status_of) -> None:
    gw = await cached(await upstream_factory(handler), admin={"listen": "127.0.0.1:0", "token": TOKEN})
    for p in ("/a/1", "/a/2", "/b"):
        await gw.client.get(p)
    origin = f"127.0.0.1:{gw.port}"  # the key carries the request's authority, port included
    r = await admin(gw, "POST", "/cache/purge", f'{{"key": "{origin}/a/1|r"}}'.encode())
    assert (r.status, r.json()) == (200, {"purged": 1})
    r = await admin(gw, "POST", "/cache/purge", f'{{"host": "{origin}", "path": "/b"}}'.encode())
    assert r.json() == {"purged": 1}
    stats = (await admin(gw, "GET", "/cache/stats")).json()
    assert stats[0]["store"] == "memory" and stats[0]["entries"] == 1
    r = await admin(gw, "POST", "/cache/purge", b'{"prefix": ""}')
    assert r.json() == {"purged": 1}
    assert "fwd=uri-miss" in status_of(await gw.client.get("/a/2"))
    for bad in (b"[]", b"{}", b'{"key": 1}', b'{"key": "a", "prefix": "b"}', b"nope", b'{"host": "h", "path": "x"}'):
        r = await admin(gw, "POST", "/cache/purge", bad)
        assert r.status == 400 and r.headers["content-type"] == "application/problem+json", bad
