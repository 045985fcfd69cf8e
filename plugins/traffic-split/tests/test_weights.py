"""Weighted splits without stickiness: smooth weighted round-robin, exact and interleaved."""

from __future__ import annotations

CANARY = {"rules": [{"upstreams": [{"name": "orders", "weight": 90}, {"name": "orders-v2", "weight": 10}]}]}


async def test_ninety_ten_split_is_exact_over_each_cycle(split) -> None:
    await split.start(CANARY)
    counts = await split.tally(lambda i: {}, 1000)
    assert counts == {"orders": 900, "orders-v2": 100}
    assert len(split.servers["orders-v2"].requests) == 100


async def test_split_is_interleaved_not_bursty(split) -> None:
    await split.start(CANARY)
    served = [await split.served() for _ in range(20)]
    assert served.count("orders-v2") == 2
    assert served[:10].count("orders-v2") == 1  # one canary request in every 10


async def test_zero_weight_upstream_gets_nothing(split) -> None:
    await split.start({"rules": [{"upstreams": [{"name": "orders", "weight": 0}, {"name": "orders-v2", "weight": 1},
                                                {"name": "orders-v3", "weight": 1}]}]})
    counts = await split.tally(lambda i: {}, 40)
    assert counts == {"orders-v2": 20, "orders-v3": 20}
