"""Memory backend: trio's (mock) clock drives the windows, the store is bounded, reloads keep counters."""

import trio
from triogate.testing import GatewayClient
from triogate_rate_limit import Check, MemoryBackend, stats_of

S = 1_000_000


async def test_windows_follow_the_mock_clock(gateway_factory, route_config, plugins, mock_clock):
    gw = await gateway_factory(route_config({"limits": ["3/minute"], "key": "ip"}), plugins=plugins)
    assert [(await gw.client.get("/a")).status for _ in range(4)] == [200, 200, 200, 429]
    mock_clock.jump(1)  # wherever the window boundary fell, 3 * (59/60) + 1 > 3
    assert (await gw.client.get("/a")).status == 429
    mock_clock.jump(120)  # two windows later nothing of the past is left
    client = GatewayClient(gw.url)  # the server closed the idle keep-alive connection during the jump
    assert [(await client.get("/a")).status for _ in range(4)] == [200, 200, 200, 429]
    await client.aclose()


async def test_gcra_refills_with_the_mock_clock(gateway_factory, route_config, plugins, mock_clock):
    gw = await gateway_factory(route_config({"limits": ["60/minute"], "key": "ip", "algorithm": "gcra", "burst": 2}),
                               plugins=plugins)
    assert [(await gw.client.get("/a")).status for _ in range(3)] == [200, 200, 429]
    r = await gw.client.get("/a")
    assert r.headers.get("retry-after") == "1"
    mock_clock.jump(1)
    client = GatewayClient(gw.url)
    assert [(await client.get("/a")).status for _ in range(2)] == [200, 429]
    await client.aclose()


async def test_store_is_bounded_and_evicts_expired_first():
    now = [100 * S]
    store = MemoryBackend(max_keys=10, clock=lambda: now[0])
    short = [Check(f"short{i}", "fixed-window", 5, 1 * S, 5) for i in range(5)]
    long = [Check(f"long{i}", "fixed-window", 1, 3600 * S, 1) for i in range(5)]
    for c in short + long:
        assert (await store.decide([c]))[0]
    assert len(store) == 10
    now[0] += 2 * S  # the short windows expired
    assert (await store.decide([Check("new", "fixed-window", 1, 60 * S, 1)]))[0]
    assert set(store.entries) == {f"long{i}" for i in range(5)} | {"new"}
    assert store.evicted == {"expired": 5, "live": 0}
    for c in long:  # the hour-long counters still hold
        assert not (await store.decide([c]))[0]


async def test_store_evicts_least_recently_used_when_full_of_live_keys():
    now = [100 * S]
    store = MemoryBackend(max_keys=10, clock=lambda: now[0])
    for i in range(10):
        await store.decide([Check(f"k{i}", "fixed-window", 2, 3600 * S, 2)])
    await store.decide([Check("k0", "fixed-window", 2, 3600 * S, 2)])  # k0 is now the most recent
    for i in range(10, 1000):
        await store.decide([Check(f"k{i}", "fixed-window", 2, 3600 * S, 2)])
        assert len(store) <= 10
    assert store.evicted["live"] >= 990


async def test_counters_survive_a_reload_with_the_same_settings(gateway_factory, route_config, plugins):
    cfg = route_config({"limits": ["2/minute"], "key": "ip"})
    gw = await gateway_factory(cfg, plugins=plugins)
    assert [(await gw.client.get("/a")).status for _ in range(2)] == [200, 200]
    assert await gw.reload(cfg) == []
    assert (await gw.client.get("/a")).status == 429
    assert await gw.reload(route_config({"limits": ["3/minute"], "key": "ip"})) == []  # new settings, new counters
    assert (await gw.client.get("/a")).status == 200


async def test_stats_shared_per_process(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "key": "ip"}), plugins=plugins)
    for _ in range(3):
        await gw.client.get("/a")
    stats = await stats_of(gw.gateway.services)
    assert stats.totals["allowed"] == 1 and stats.totals["limited"] == 2
    assert stats.by_instance["rate-limit@r"]["limited"] == 2


async def test_decisions_are_cheap():
    """A memory decision with two limits stays in the tens of microseconds."""
    store = MemoryBackend(max_keys=100_000)
    checks = [Check("a:1", "sliding-window", 10**9, 60 * S, 1), Check("a:2", "gcra", 10**9, 3600 * S, 10**9)]
    start = trio.current_time()
    n = 2000
    for _ in range(n):
        await store.decide(checks)
    per_decision = (trio.current_time() - start) / n
    assert per_decision < 200e-6, per_decision
