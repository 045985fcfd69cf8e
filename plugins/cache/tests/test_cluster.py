"""The Redis store on a real 3-primary + 3-replica Redis Cluster (``redis_cluster``, one per module).

Every key of one URI shares a ``{hash tag}`` (its host + path), so storing and invalidating are
single-slot scripts; URIs spread over every primary; a purge by prefix scans every primary.
"""

from __future__ import annotations

from typing import Any

import trio
from triogate.testing import RedisCluster

from .test_redis import counting, plugin_of

HOST = {"host": "api.example"}


def cluster_cache(cluster: RedisCluster, prefix: str) -> dict[str, Any]:
    return {"store": "redis", "redis": {"cluster_nodes": cluster.addresses, "key_prefix": prefix, "timeout": 5.0,
                                        "health_check_interval": 0.1}}


async def paths_on_every_primary(cluster: RedisCluster, prefix: str, count: int) -> list[str]:
    """``count`` paths whose entries live on every primary (different slots)."""
    paths: dict[int, list[str]] = {}
    for i in range(1000):
        path = f"/p{i}"
        port = (await cluster.primary_of(f"{prefix}cache:{{api.example{path}}}|r")).port
        paths.setdefault(port, []).append(path)
        if len(paths) == cluster.masters and sum(min(len(v), count // cluster.masters) for v in paths.values()) \
                >= count:
            return [p for v in paths.values() for p in v[:count // cluster.masters]]
    raise AssertionError("could not spread paths over every primary")


async def test_two_gateways_share_entries_across_slots(redis_cluster, upstream_factory, cached, status_of, calls):
    prefix = "share:"
    paths = await paths_on_every_primary(redis_cluster, prefix, 6)
    up = await upstream_factory(counting())
    gw1 = await cached(up, cache=cluster_cache(redis_cluster, prefix))
    gw2 = await cached(up, cache=cluster_cache(redis_cluster, prefix))
    for path in paths:
        first = await gw1.client.get(path, headers=HOST)
        assert "stored" in status_of(first)
        r = await gw2.client.get(path, headers=HOST)
        assert r.content == first.content and status_of(r).startswith("triogate; hit"), path
        assert calls(up, path) == 1
    # an unsafe method through one gateway invalidates (one script, one slot) for both
    await gw2.client.post(paths[0], body=b"x", headers=HOST)
    r = await gw1.client.get(paths[0], headers=HOST)
    assert r.content == f"v{len(paths) + 1}:".encode() and "fwd=uri-miss" in status_of(r)
    # a purge by prefix reaches every primary
    assert await plugin_of(gw1).purge_prefix("api.example/p") == len(paths)
    for path in paths:
        assert "fwd=uri-miss" in status_of(await gw2.client.get(path, headers=HOST)), path


async def test_manual_failover_keeps_entries_and_answers(redis_cluster, upstream_factory, cached, status_of,
                                                         calls):
    """CLUSTER FAILOVER of the primary of a stored entry while clients keep reading it: every answer is a
    200 with the stored body, and the entry is still a hit on the promoted replica."""
    prefix = "cfail:"
    path = (await paths_on_every_primary(redis_cluster, prefix, 3))[0]
    up = await upstream_factory(counting())
    gws = [await cached(up, cache=cluster_cache(redis_cluster, prefix)) for _ in range(2)]
    await gws[0].client.get(path, headers=HOST)
    bodies: list[tuple[int, bytes]] = []
    stop = trio.Event()

    async def reader(gw: Any) -> None:
        while not stop.is_set():
            r = await gw.client.get(path, headers=HOST)
            bodies.append((r.status, r.content))

    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            for gw in gws * 4:
                n.start_soon(reader, gw)
            await trio.sleep(0.05)
            old, new = await redis_cluster.failover(f"{prefix}cache:{{api.example{path}}}|r")
            await trio.sleep(0.05)
            stop.set()
    assert old.port != new.port and bodies
    assert set(bodies) == {(200, b"v1:")}  # answered from the store, or (never here) the same body upstream
    assert status_of(await gws[1].client.get(path, headers=HOST)).startswith("triogate; hit")
    assert calls(up, path) == 1
