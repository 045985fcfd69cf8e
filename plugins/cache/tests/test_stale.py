"""stale-while-revalidate (background revalidation) and stale-if-error (RFC 5861)."""

from __future__ import annotations

import trio
from triogate import Response


def counting(cc: str, state: dict | None = None):
    state = state if state is not None else {}
    state.setdefault("count", 0)

    async def handler(req):
        state["count"] += 1
        if state.get("fail"):
            return Response(503, [("content-type", "text/plain")], b"down")
        return Response(200, [("cache-control", cc), ("etag", f'"e{state["count"]}"')], f"v{state['count']}".encode())

    return handler


async def wait_for(predicate, seconds: float = 5.0) -> None:
    with trio.fail_after(seconds):
        while not predicate():
            await trio.sleep(0.005)


async def test_stale_while_revalidate_serves_stale_and_refreshes_in_background(
        upstream_factory, cached, status_of, calls, autojump_clock) -> None:
    up = await upstream_factory(counting("max-age=10, stale-while-revalidate=30"))
    gw = await cached(up)
    await gw.client.get("/w")
    await trio.sleep(15)
    r = await gw.client.get("/w")
    assert r.content == b"v1"
    assert status_of(r) == "triogate; hit; ttl=-5; detail=stale-while-revalidate"
    await wait_for(lambda: calls(up, "/w") == 2)
    assert up.requests[-1].headers.get("if-none-match") == '"e1"'
    await trio.sleep(0.1)
    r = await gw.client.get("/w")
    assert r.content == b"v2" and "hit" in status_of(r) and "detail" not in status_of(r)


async def test_past_the_swr_window_the_request_waits(upstream_factory, cached, autojump_clock) -> None:
    up = await upstream_factory(counting("max-age=10, stale-while-revalidate=5"))
    gw = await cached(up)
    await gw.client.get("/w")
    await trio.sleep(16)
    assert (await gw.client.get("/w")).content == b"v2"


async def test_stale_if_error_with_a_dead_upstream(upstream_factory, cached, status_of, mock_clock) -> None:
    up = await upstream_factory(counting("max-age=10, stale-if-error=60"))
    gw = await cached(up, cache={"x_cache_status": True})
    await gw.client.get("/e")
    up.stop()
    mock_clock.jump(30)
    r = await gw.client.get("/e")
    assert r.status == 200 and r.content == b"v1"
    assert status_of(r) == "triogate; fwd=stale; fwd-status=502; ttl=-20; detail=stale-if-error"
    assert r.headers["x-cache-status"] == "Stale"
    mock_clock.jump(41)  # past the stale-if-error window: the error goes through
    r = await gw.client.get("/e")
    assert r.status == 502


async def test_stale_if_error_on_5xx_and_from_config(upstream_factory, cached, mock_clock) -> None:
    state: dict = {}
    up = await upstream_factory(counting("max-age=10", state))
    gw = await cached(up, cache={"stale_if_error": 100})
    await gw.client.get("/c")
    state["fail"] = True
    mock_clock.jump(50)
    r = await gw.client.get("/c")
    assert r.status == 200 and r.content == b"v1"


async def test_stale_if_error_request_directive(upstream_factory, cached, mock_clock) -> None:
    state: dict = {}
    gw = await cached(await upstream_factory(counting("max-age=10", state)))
    await gw.client.get("/q")
    state["fail"] = True
    mock_clock.jump(50)
    assert (await gw.client.get("/q")).status == 503
    r = await gw.client.get("/q", headers={"cache-control": "stale-if-error=60"})
    assert r.status == 200 and r.content == b"v1"


async def test_must_revalidate_never_serves_stale_on_error(upstream_factory, cached, mock_clock) -> None:
    state: dict = {}
    gw = await cached(await upstream_factory(counting("max-age=10, must-revalidate, stale-if-error=60", state)),
                      cache={"stale_if_error": 100})
    await gw.client.get("/m")
    state["fail"] = True
    mock_clock.jump(20)
    assert (await gw.client.get("/m")).status == 503
