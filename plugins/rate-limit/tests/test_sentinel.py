"""The Redis backend behind a real Sentinel deployment (``redis_sentinel``: 1 primary, 1 replica, 3 sentinels)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio
from triogate.testing import RedisSentinel, redis_command

from .test_cluster import PERIOD, REMAINING, WINDOW, traffic


async def test_sentinel_failover_mid_traffic(gateway_factory, route_config, plugins, redis_sentinel: RedisSentinel,
                                             record_property):
    """SENTINEL FAILOVER while 2 gateways (8 clients) send requests: every request is answered (fault
    tolerant), decisions land on the promoted replica afterwards, and the decisions lost are measured.

    As in the cluster test, each answered fixed-window decision carries its count: a count seen twice
    was acknowledged by the old primary and then lost (it was not on the replica when it was promoted,
    or reached the old primary after the promotion, before it was turned into a replica).
    """
    limit = 10**7
    redis = {"sentinels": redis_sentinel.sentinels, "sentinel_service": redis_sentinel.service, "timeout": 5.0,
             "connect_timeout": 1.0, "health_check_interval": 0.1, "key_prefix": "sentinel:"}
    cfg = route_config({"limits": [f"{limit}/{PERIOD}"], "key": "consumer", "backend": "redis", "redis": redis,
                        "algorithm": "fixed-window"}, auth=True)
    gws = [await gateway_factory(cfg, plugins=plugins) for _ in range(2)]
    statuses: Counter[Any] = Counter()
    counts: list[int] = []
    stop = trio.Event()

    key = f"sentinel:rl:{{r:consumer:c:alice}}:{WINDOW}"

    async def on_primary(port: int) -> int:
        return int(await redis_command(port, "HGET", key, "c") or 0)

    def progress(r: Any) -> None:
        remaining = r.headers.get(REMAINING)
        if remaining is not None:
            counts.append(limit - int(remaining))

    async def fail_over() -> None:
        with trio.fail_after(30):
            while len(counts) < 300:
                await trio.sleep(0.01)
            old, new = await redis_sentinel.failover()
            assert old.port != new.port
            base = await on_primary(new.port)
            while await on_primary(new.port) < base + 100:  # the gateways count on the new primary again
                await trio.sleep(0.01)
        stop.set()

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            n.start_soon(fail_over)
            await traffic(gws * 4, ["alice"], 10**6, statuses, progress, stop=stop)
    assert {s for (_, s) in statuses if s != "decided"} == {200}  # fault tolerant: every request answered
    stored = await on_primary((await redis_sentinel.primary()).port)
    lost = len(counts) - stored
    reissued = len(counts) - len(set(counts))
    unchecked = statuses["alice", 200] - len(counts)
    for name, value in (("decisions", len(counts)), ("lost", lost), ("reissued", reissued),
                        ("unchecked", unchecked)):
        record_property(f"sentinel_failover_{name}", value)
    print(f"\nsentinel failover: {len(counts)} decisions answered, {stored} counted on the new primary: {lost} lost "
          f"({reissued} counts handed out twice); {unchecked} requests let through unchecked while failing over")
