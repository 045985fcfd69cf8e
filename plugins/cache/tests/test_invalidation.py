"""Invalidation after unsafe methods (RFC 9111 §4.4), including Location / Content-Location."""

from __future__ import annotations

from triogate import Response


def store(state: dict):
    async def handler(req):
        if req.method == "GET":
            state["v"] = state.get("v", 0) + 1
            return Response(200, [("cache-control", "max-age=600")], f"{req.path}:{state['v']}".encode())
        headers = [(k, v) for k, v in state.get("headers", {}).items()]
        return Response(state.get("status", 201), headers, b"")

    return handler


async def test_post_invalidates_the_target(upstream_factory, cached, status_of) -> None:
    state: dict = {}
    gw = await cached(await upstream_factory(store(state)))
    await gw.client.get("/items")
    await gw.client.get("/items?page=2")
    assert "hit" in status_of(await gw.client.get("/items"))
    r = await gw.client.post("/items", body=b"{}")
    assert r.status == 201 and "fwd=bypass" in status_of(r)
    r = await gw.client.get("/items")
    assert "fwd=uri-miss" in status_of(r)
    assert "fwd=uri-miss" in status_of(await gw.client.get("/items?page=2"))


async def test_failed_unsafe_request_does_not_invalidate(upstream_factory, cached, status_of) -> None:
    state: dict = {"status": 500}
    gw = await cached(await upstream_factory(store(state)))
    await gw.client.get("/items")
    await gw.client.request("DELETE", "/items")
    assert "hit" in status_of(await gw.client.get("/items"))


async def test_location_and_content_location_same_origin(upstream_factory, cached, status_of) -> None:
    state: dict = {"headers": {"location": "/items"}}
    gw = await cached(await upstream_factory(store(state)))
    state["headers"]["content-location"] = f"http://127.0.0.1:{gw.port}/other"
    for p in ("/items", "/other", "/elsewhere"):
        await gw.client.get(p)
    await gw.client.request("PUT", "/items/1", body=b"{}")
    assert "fwd=uri-miss" in status_of(await gw.client.get("/items"))
    assert "fwd=uri-miss" in status_of(await gw.client.get("/other"))
    assert "hit" in status_of(await gw.client.get("/elsewhere"))


async def test_other_origin_location_is_ignored(upstream_factory, cached, status_of) -> None:
    state: dict = {"headers": {"location": "http://other.example/items"}}
    gw = await cached(await upstream_factory(store(state)))
    await gw.client.get("/items")
    await gw.client.request("PATCH", "/items/1", body=b"{}")
    assert "hit" in status_of(await gw.client.get("/items"))
