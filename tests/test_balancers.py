"""Load-balancer distributions over real upstream servers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio

from triogate import Response


async def named_upstreams(upstream_factory, n: int, handler: Any = None) -> list:
    ups = []
    for i in range(n):
        async def h(req, i=i):
            if handler is not None:
                await handler(i, req)
            return Response.json({"target": i})
        ups.append(await upstream_factory(h, name=str(i)))
    return ups


def config(ups: list, weights: list[int] | None = None, **upstream: Any) -> dict:
    targets = [{"url": u.url, "weight": (weights[i] if weights else 1)} for i, u in enumerate(ups)]
    return {
        "upstreams": {"u": {"targets": targets, **upstream}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def test_round_robin_rotates_evenly(upstream_factory, gateway_factory):
    ups = await named_upstreams(upstream_factory, 3)
    gw = await gateway_factory(config(ups, balancer="round-robin"))
    seq = [(await gw.client.get("/")).json()["target"] for _ in range(30)]
    assert Counter(seq) == {0: 10, 1: 10, 2: 10}
    assert all(seq[i] != seq[i + 1] for i in range(len(seq) - 1))  # a rotation, no repeats


async def test_weighted_distribution_is_exact_and_smooth(upstream_factory, gateway_factory):
    ups = await named_upstreams(upstream_factory, 3)
    gw = await gateway_factory(config(ups, [1, 2, 3], balancer="weighted"))
    seq = [(await gw.client.get("/")).json()["target"] for _ in range(60)]
    assert Counter(seq) == {0: 10, 1: 20, 2: 30}
    # smooth: the heaviest target never gets more than 3 in a row out of a 1:2:3 cycle
    longest = max(len(run) for run in "".join(map(str, seq)).replace("0", " ").replace("1", " ").split())
    assert longest <= 2


async def test_weight_zero_takes_no_traffic(upstream_factory, gateway_factory):
    ups = await named_upstreams(upstream_factory, 2)
    gw = await gateway_factory(config(ups, [1, 0]))
    seq = [(await gw.client.get("/")).json()["target"] for _ in range(10)]
    assert set(seq) == {0}


async def test_least_connections_avoids_the_busy_target(upstream_factory, gateway_factory, nursery):
    release = trio.Event()
    started = trio.Event()

    async def handler(i, req):
        if req.path == "/block":
            started.set()
            await release.wait()

    ups = await named_upstreams(upstream_factory, 2, handler)
    gw = await gateway_factory(config(ups, balancer="least-connections"))

    async def blocked() -> None:
        from triogate.upstream import HTTPClient

        client = HTTPClient()
        try:
            await client.fetch("GET", f"{gw.url}/block", timeout=10)
        finally:
            await client.aclose()

    nursery.start_soon(blocked)
    with trio.fail_after(3):
        await started.wait()
    busy = next(i for i, u in enumerate(ups) if any(r.path == "/block" for r in u.requests))
    seq = [(await gw.client.get("/fast")).json()["target"] for _ in range(20)]
    assert seq == [1 - busy] * 20
    release.set()
    await trio.sleep(0.1)
    seq = [(await gw.client.get("/fast")).json()["target"] for _ in range(20)]
    assert Counter(seq) == {0: 10, 1: 10}  # idle again: ties rotate


async def test_least_connections_respects_weights(upstream_factory, gateway_factory, nursery):
    release = trio.Event()

    async def handler(i, req):
        if req.path == "/block":
            await release.wait()

    ups = await named_upstreams(upstream_factory, 2, handler)
    gw = await gateway_factory(config(ups, [1, 3], balancer="least-connections"))
    from triogate.upstream import HTTPClient

    clients = [HTTPClient() for _ in range(8)]

    async def blocked(c: HTTPClient) -> None:
        await c.fetch("GET", f"{gw.url}/block", timeout=10)

    async with trio.open_nursery() as n:
        for c in clients:
            n.start_soon(blocked, c)
            await trio.sleep(0.05)
        await trio.sleep(0.1)
        counts = Counter(i for i, u in enumerate(ups) for r in u.requests if r.path == "/block")
        release.set()
    for c in clients:
        await c.aclose()
    assert counts == {0: 2, 1: 6}


async def test_consistent_hash_is_sticky_and_remaps_minimally(upstream_factory, gateway_factory):
    ups = await named_upstreams(upstream_factory, 4)
    gw = await gateway_factory(config(ups, balancer="consistent-hash", hash_on="header:x-user", retries=1,
                                      circuit_breaker={"failures": 1, "open_seconds": 60}))
    keys = [f"user-{i}" for i in range(200)]

    async def owner(key: str) -> int:
        r = await gw.client.get("/", headers={"x-user": key})
        assert r.status == 200
        return r.json()["target"]

    before = {k: await owner(k) for k in keys}
    assert {k: await owner(k) for k in keys} == before  # sticky
    share = Counter(before.values())
    assert len(share) == 4 and min(share.values()) >= 200 * 0.1, share  # every target gets a fair slice
    ups[2].stop()  # target 2 goes away; its first failure opens its circuit
    after = {k: await owner(k) for k in keys}
    moved = {k for k in keys if after[k] != before[k]}
    assert moved == {k for k in keys if before[k] == 2}  # only the keys of the lost target move
    assert all(after[k] != 2 for k in keys)


async def test_consistent_hash_on_cookie_and_client_ip(upstream_factory, gateway_factory):
    ups = await named_upstreams(upstream_factory, 3)
    gw = await gateway_factory(config(ups, balancer="consistent-hash", hash_on="cookie:session"))
    owners = set()
    for _ in range(5):
        r = await gw.client.get("/", headers={"cookie": "a=1; session=abc123"})
        owners.add(r.json()["target"])
    assert len(owners) == 1
    gw2 = await gateway_factory(config(ups, balancer="consistent-hash", hash_on="client-ip"))
    assert len({(await gw2.client.get("/")).json()["target"] for _ in range(5)}) == 1
