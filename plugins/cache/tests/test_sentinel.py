"""The Redis store behind a real Sentinel deployment (``redis_sentinel``: 1 primary, 1 replica, 3 sentinels).

What the docs promise (README "redis" store, docs/scaling.md "When Redis goes away"): while Redis is
unavailable the cache steps aside — requests go upstream, nothing fails — and caching resumes by
itself. A Sentinel failover may lose entries written to the old primary in the second before the
gateways follow the sentinels (a miss, never an error); afterwards entries live on the new primary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from triogate.testing import RedisSentinel, redis_command
from triogate.testing.redis import ClusterNode

from .test_redis import counting

HOST = {"host": "api.example"}
#: entries stored before a switch and invalidated (POST) while it happens, one every 10 ms
INVALIDATED = 300


def sentinel_cache(sentinel: RedisSentinel, prefix: str) -> dict[str, Any]:
    return {"store": "redis", "redis": {"sentinels": sentinel.sentinels, "sentinel_service": sentinel.service,
                                        "key_prefix": prefix, "timeout": 5.0, "connect_timeout": 1.0,
                                        "health_check_interval": 0.1}}


def entry_key(prefix: str, path: str) -> str:
    return f"{prefix}cache:{{api.example{path}}}|r"


async def exists(port: int, key: str) -> bool:
    return bool(await redis_command(port, "EXISTS", key))


async def stored_and_shared(gws: list[Any], up: Any, path: str, status_of: Any, calls: Any, primary: ClusterNode,
                            prefix: str) -> bool:
    """GET ``path`` through the first gateway, then the others: a miss stored once on ``primary``, then hits
    for all. False if it was not stored there (yet)."""
    first = await gws[0].client.get(path, headers=HOST)
    assert first.status == 200, (path, first.status)
    if "stored" not in status_of(first):
        return False
    with trio.move_on_after(2):  # the entry is written as the body streams: it may land just after the answer
        while not await exists(primary.port, entry_key(prefix, path)):
            await trio.sleep(0.01)
    if not await exists(primary.port, entry_key(prefix, path)):
        return False
    for gw in gws[1:]:
        r = await gw.client.get(path, headers=HOST)
        assert r.status == 200, (path, r.status)
        if not status_of(r).startswith("triogate; hit") or r.content != first.content:
            return False
    return calls(up, path) == 1


async def switch_under_traffic(sentinel: RedisSentinel, prefix: str, upstream_factory: Any, cached: Any,
                               status_of: Any, calls: Any, record_property: Any,
                               switch: Callable[[], Awaitable[tuple[ClusterNode, ClusterNode]]]
                               ) -> tuple[int, int]:
    """Store ``/kept``, then run ``switch`` (a failover or a kill) while 6 clients read ``/kept`` and 2 store
    new paths through 2 gateways; keep going until both gateways store and share on the new primary.

    Asserts what the docs promise: every answer a 200; a hit is the stored body; a miss of ``/kept``
    only while the store is unavailable (it is on both servers); afterwards ``/kept`` is a hit on the new
    primary and new entries are stored there. Returns how many answers went upstream with the store
    unavailable and how many invalidations sent during the switch were lost; records (and prints) those
    and how many entries stored during the switch were lost.
    """
    await sentinel.wait_healthy()  # an earlier failover's old primary is demoted only seconds later
    up = await upstream_factory(counting())
    gws = [await cached(up, cache=sentinel_cache(sentinel, prefix)) for _ in range(2)]
    old = await sentinel.primary()
    replica = next(n for n in sentinel.servers if n.port != old.port)

    # stores and serves hits over Sentinel: one origin call, a hit for the other gateway, the key on the primary
    assert await stored_and_shared(gws, up, "/kept", status_of, calls, old, prefix)
    with trio.fail_after(5):  # replicated before the switch (asynchronous replication: wait for it)
        while not await exists(replica.port, entry_key(prefix, "/kept")):
            await trio.sleep(0.01)

    # entries the invalidator will remove (POST) during the switch; the last one replicated means all are
    for i in range(INVALIDATED):
        assert "stored" in status_of(await gws[0].client.get(f"/inv{i}", headers=HOST))
    with trio.fail_after(10):
        for i in range(INVALIDATED):
            while not await exists(replica.port, entry_key(prefix, f"/inv{i}")):
                await trio.sleep(0.01)

    answers: list[tuple[str, int, bytes, str]] = []
    invalidated: list[int] = []
    stop = trio.Event()

    async def reader(gw: Any) -> None:
        while not stop.is_set():
            r = await gw.client.get("/kept", headers=HOST)
            answers.append(("/kept", r.status, r.content, status_of(r)))

    async def writer(gw: Any, name: str) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            r = await gw.client.get(f"/{name}{i}", headers=HOST)
            answers.append((f"/{name}{i}", r.status, r.content, status_of(r)))

    async def invalidator() -> None:
        for i in range(INVALIDATED):
            if stop.is_set():
                break
            r = await gws[i % 2].client.post(f"/inv{i}", body=b"x", headers=HOST)
            assert r.status == 204, r.status  # the origin's answer: an unsafe method never fails on the store
            invalidated.append(i)
            await trio.sleep(0.01)

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            n.start_soon(invalidator)
            for gw in gws * 3:
                n.start_soon(reader, gw)
            for k, gw in enumerate(gws):
                n.start_soon(writer, gw, f"w{k}-")
            while len(answers) < 100:
                await trio.sleep(0.01)
            before = len(answers)
            old_, new = await switch()
            assert (old_.port, new.port) == (old.port, replica.port)
            # keep the traffic going until the gateways store on the new primary again
            after = 0
            while after < 3:
                after += await stored_and_shared(gws, up, f"/after{len(answers)}", status_of, calls, new, prefix)
                await trio.sleep(0.01)
            stop.set()

    assert before and len(answers) > before
    assert {status for _, status, _, _ in answers} == {200}  # nothing failed: no 5xx during the switch
    for path, _, body, cache_status in answers:
        if path == "/kept":  # a hit is the stored body; a miss only with the store unavailable, then the origin's
            hit = cache_status.startswith("triogate; hit")
            assert (body == b"v1:") == hit and (hit or "detail=store-unavailable" in cache_status), \
                (body, cache_status)
        else:
            assert "fwd=uri-miss" in cache_status, (path, cache_status)  # each writer path is asked once
    assert calls(up, "/kept") == 1 + sum(1 for p, _, _, s in answers if p == "/kept" and "hit" not in s)

    # after the switch: the old entry is a hit from the promoted replica, new entries live on the new primary
    for gw in gws:
        r = await gw.client.get("/kept", headers=HOST)
        assert r.content == b"v1:" and status_of(r).startswith("triogate; hit"), status_of(r)
    assert await stored_and_shared(gws, up, "/new", status_of, calls, new, prefix)
    assert (await sentinel.primary()).port == new.port

    # measured, not promised: entries the old primary took after the promotion are gone (later misses)
    stored = [p for p, _, _, s in answers if p != "/kept" and "stored" in s]
    lost = [p for p in stored if not await exists(new.port, entry_key(prefix, p))]
    unavailable = sum(1 for *_, s in answers if "store-unavailable" in s)
    # an invalidation is lost when it reached the old primary after the promotion, or no store at all:
    # the entry it removed is back (a hit) on the new primary
    assert invalidated
    stale = [i for i in invalidated if await exists(new.port, entry_key(prefix, f"/inv{i}"))]
    for name, value in (("answers", len(answers)), ("stored", len(stored)), ("lost", len(lost)),
                        ("store_unavailable", unavailable), ("invalidations", len(invalidated)),
                        ("invalidations_lost", len(stale))):
        record_property(f"cache_sentinel_{prefix.rstrip(':')}_{name}", value)
    print(f"\ncache sentinel {prefix.rstrip(':')}: {len(answers)} answers, {unavailable} went upstream (store "
          f"unavailable), {len(stored)} entries stored, {len(lost)} of them lost with the old primary; "
          f"{len(stale)} of {len(invalidated)} invalidations lost")
    return unavailable, len(stale)


async def test_killed_primary_goes_upstream_then_stores_on_the_promoted_replica(
        redis_sentinel: RedisSentinel, upstream_factory, cached, status_of, calls, record_property) -> None:
    """A SIGKILLed primary mid-traffic: until the sentinels promote the replica (``down_after_ms`` plus an
    election) the store is unavailable and requests go upstream, answered 200; then caching resumes on
    the promoted replica by itself, and the invalidations it missed are replayed there. The killed server is started again (as a replica) for the next test
    (first in this module: after a SENTINEL FAILOVER the deployment is ready again only once the sentinels
    demote the old primary, ~10 s later)."""
    killed: list[ClusterNode] = []

    async def kill() -> tuple[ClusterNode, ClusterNode]:
        old, new = await redis_sentinel.kill_primary()
        killed.append(old)
        return old, new

    try:
        unavailable, stale = await switch_under_traffic(redis_sentinel, "skill:", upstream_factory, cached,
                                                        status_of, calls, record_property, kill)
        assert unavailable > 0  # the outage was seen (and every such answer was a 200 from the origin)
        # invalidations that found no store were replayed on the promoted replica: none of its entries
        # (replicated before the kill) is served after the write that meant to remove it
        assert stale == 0
    finally:
        for node in killed:
            await redis_sentinel.restart(node)


async def test_failover_keeps_answering_and_stores_on_the_new_primary(
        redis_sentinel: RedisSentinel, upstream_factory, cached, status_of, calls, record_property) -> None:
    """SENTINEL FAILOVER mid-traffic (the way the rate-limit test does it)."""
    await switch_under_traffic(redis_sentinel, "sfail:", upstream_factory, cached, status_of, calls,
                               record_property, redis_sentinel.failover)
