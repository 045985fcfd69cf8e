"""Request coalescing: concurrent misses for one key make one upstream request."""

from __future__ import annotations

from functools import partial

import trio
from triogate import Response
from triogate.testing import ResetConnection

N = 12


async def fire(gw, path: str, n: int = N, headers=None) -> list:
    results: list = [None] * n

    async def one(i: int) -> None:
        results[i] = await gw.client.get(path, headers=headers)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
    return results


async def test_concurrent_misses_make_one_upstream_call(upstream_factory, cached, status_of, calls) -> None:
    async def slow(req):
        await trio.sleep(0.2)
        return Response(200, [("cache-control", "max-age=60")], b"payload" * 100)

    up = await upstream_factory(slow)
    gw = await cached(up)
    results = await fire(gw, "/c")
    assert calls(up, "/c") == 1
    assert all(r.status == 200 and r.content == b"payload" * 100 for r in results)
    statuses = sorted(status_of(r) for r in results)
    assert sum("fwd=uri-miss" in s for s in statuses) == 1
    assert sum(s == "triogate; hit; collapsed; ttl=60" for s in statuses) == N - 1


async def test_waiters_proceed_on_their_own_when_the_first_fails(upstream_factory, cached, calls) -> None:
    state = {"n": 0}

    async def first_fails(req):
        state["n"] += 1
        await trio.sleep(0.2 if state["n"] == 1 else 0)
        if state["n"] == 1:
            return Response(500, [], b"boom")
        return Response(200, [("cache-control", "no-store")], b"ok")

    up = await upstream_factory(first_fails)
    gw = await cached(up)
    results = await fire(gw, "/f", n=5)
    assert calls(up, "/f") == 5
    assert sorted(r.status for r in results) == [200, 200, 200, 200, 500]


async def test_waiters_give_up_after_the_timeout(upstream_factory, cached, calls) -> None:
    gate = trio.Event()

    async def stuck_first(req):
        if req.headers.get("x-first"):
            await gate.wait()
        return Response(200, [("cache-control", "max-age=60")], b"x")

    up = await upstream_factory(stuck_first)
    gw = await cached(up, cache={"coalesce_timeout": 0.2})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(gw.client.get, "/t", headers={"x-first": "1"}))
        with trio.fail_after(5):
            while calls(up, "/t") < 1:
                await trio.sleep(0.01)
            r = await gw.client.get("/t")
        assert r.status == 200
        assert calls(up, "/t") == 2
        gate.set()


async def test_a_reset_first_request_frees_the_waiters_at_once(upstream_factory, cached, calls) -> None:
    state = {"n": 0}

    async def handler(req):
        state["n"] += 1
        if state["n"] == 1:
            await trio.sleep(0.2)
            raise ResetConnection()
        return Response(200, [("cache-control", "max-age=60")], b"x")

    up = await upstream_factory(handler)
    gw = await cached(up, cache={"coalesce_timeout": 30})
    start = trio.current_time()
    results = await fire(gw, "/k", n=4)
    assert trio.current_time() - start < 5
    assert sorted(r.status for r in results) == [200, 200, 200, 502]
    assert calls(up, "/k") == 4  # the three waiters each went upstream on their own


async def _peak_concurrency(upstream_factory, cached, cache=None):
    """Five concurrent misses after one answer that was not storable: how many reached the origin together?"""
    state = {"now": 0, "peak": 0}

    async def uncacheable(req):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await trio.sleep(0.2)
        state["now"] -= 1
        return Response(200, [("cache-control", "no-store")], b"ok")

    up = await upstream_factory(uncacheable)
    gw = await cached(up, cache=cache)
    assert (await gw.client.get("/u")).status == 200
    state["peak"] = 0
    results = await fire(gw, "/u", n=5)
    assert [r.status for r in results] == [200] * 5
    return state["peak"]


async def test_a_key_whose_answer_was_not_storable_skips_coalescing(upstream_factory, cached) -> None:
    # hit-for-miss: waiting for another request's no-store answer would only add its latency
    assert await _peak_concurrency(upstream_factory, cached) == 5


async def test_uncacheable_ttl_zero_keeps_coalescing(upstream_factory, cached) -> None:
    # the first goes alone; the four others wait for its answer, then go together
    assert await _peak_concurrency(upstream_factory, cached, cache={"uncacheable_ttl": 0}) == 4


async def test_the_uncacheable_memory_is_bounded_and_expires() -> None:
    from triogate_cache.state import UNCACHEABLE_MAX, Shared

    shared = Shared(store=None)
    for i in range(UNCACHEABLE_MAX + 10):
        shared.remember_uncacheable(f"k{i}", 100.0)
    assert len(shared.uncacheable) == UNCACHEABLE_MAX
    assert not shared.is_uncacheable("k0", 1.0)  # the oldest were forgotten
    assert shared.is_uncacheable(f"k{UNCACHEABLE_MAX + 9}", 99.0)
    assert not shared.is_uncacheable(f"k{UNCACHEABLE_MAX + 9}", 100.0)  # expired, and forgotten
    assert f"k{UNCACHEABLE_MAX + 9}" not in shared.uncacheable
