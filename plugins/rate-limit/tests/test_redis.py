"""Redis backend through the gateway: exact under concurrency, outages (fault_tolerant or 503), recovery."""

import logging

import trio
from triogate_rate_limit import stats_of

FAST = {"connect_timeout": 0.5, "timeout": 0.5, "health_check_interval": 0.1}


def redis_limit(server, limits, **kw):
    return {"limits": limits, "key": "global", "backend": "redis", "redis": {"url": server.url, **FAST}, **kw}


async def test_exact_under_concurrency(gateway_factory, route_config, plugins, redis_server):
    """200 concurrent requests through two gateways on one Redis, limit 37: exactly 37 pass."""
    cfg = route_config(redis_limit(redis_server, ["37/hour"], fault_tolerant=False))
    cfg["routes"]["r"]["plugins"]["rate-limit"]["redis"]["timeout"] = 5.0  # a loaded CI box must not turn into 503s
    gws = [await gateway_factory(cfg, plugins=plugins) for _ in range(2)]
    statuses = []

    async def one(gw):
        statuses.append((await gw.client.get("/a")).status)

    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            for i in range(200):
                n.start_soon(one, gws[i % 2])
    assert statuses.count(200) == 37 and statuses.count(429) == 163


async def test_counters_live_in_redis_under_the_prefix(gateway_factory, route_config, plugins, redis_server):
    cfg = route_config(redis_limit(redis_server, ["5/minute"], key="ip"))
    cfg["routes"]["r"]["plugins"]["rate-limit"]["redis"]["key_prefix"] = "gw1:"
    gw = await gateway_factory(cfg, plugins=plugins)
    r = await gw.client.get("/a")
    assert r.status == 200 and r.headers.get("x-ratelimit-remaining-minute") == "4"
    assert await redis_server.command("EXISTS", "gw1:rl:{r:ip-minute:i:127.0.0.1}:60") == b":0"
    assert await redis_server.command("EXISTS", "gw1:rl:{r:ip:i:127.0.0.1}:60") == b":1"
    assert await redis_server.command("PTTL", "gw1:rl:{r:ip:i:127.0.0.1}:60") != b":-1"  # expires


async def test_algorithms_on_redis(gateway_factory, route_config, plugins, redis_server):
    for algorithm in ("sliding-window", "fixed-window", "gcra"):
        cfg = route_config(redis_limit(redis_server, ["2/minute"], algorithm=algorithm, name=algorithm))
        gw = await gateway_factory(cfg, plugins=plugins)
        assert [(await gw.client.get("/a")).status for _ in range(3)] == [200, 200, 429], algorithm
        await gw.stop()


async def test_redis_down_fault_tolerant_lets_traffic_through(gateway_factory, route_config, plugins, redis_server,
                                                             caplog):
    gw = await gateway_factory(route_config(redis_limit(redis_server, ["2/minute"])), plugins=plugins)
    assert [(await gw.client.get("/a")).status for _ in range(3)] == [200, 200, 429]
    await redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="triogate.rate_limit"):
        with trio.fail_after(5):
            got = [await gw.client.get("/a") for _ in range(5)]
    assert [r.status for r in got] == [200] * 5
    assert got[-1].headers.get("ratelimit-policy") and "ratelimit" not in got[-1].headers
    stats = await stats_of(gw.gateway.services)
    assert stats.totals["unavailable_allowed"] == 5
    assert sum("Redis unavailable" in rec.getMessage() for rec in caplog.records) == 1  # one line, not five
    # Redis comes back (empty: no persistence); the plugin reconnects by itself
    await redis_server.start()
    with trio.fail_after(5):
        while (await gw.client.get("/a")).headers.get("x-ratelimit-remaining-minute") is None:
            await trio.sleep(0.05)
    assert (await gw.client.get("/a")).status == 200
    assert (await gw.client.get("/a")).status == 429


async def test_redis_down_strict_answers_503(gateway_factory, route_config, plugins, redis_server):
    gw = await gateway_factory(route_config(redis_limit(redis_server, ["100/minute"], fault_tolerant=False)),
                               plugins=plugins)
    assert (await gw.client.get("/a")).status == 200
    await redis_server.stop()
    with trio.fail_after(5):
        r = await gw.client.get("/a")
    assert r.status == 503 and r.headers.get("content-type") == "application/problem+json"
    assert r.headers.get("retry-after") == "1" and r.json()["request_id"]
    assert (await stats_of(gw.gateway.services)).totals["unavailable_rejected"] == 1
    await redis_server.start()
    with trio.fail_after(5):
        while (await gw.client.get("/a")).status != 200:
            await trio.sleep(0.05)


async def test_gateway_starts_while_redis_is_down(gateway_factory, route_config, plugins, redis_server):
    await redis_server.stop()
    with trio.fail_after(5):
        gw = await gateway_factory(route_config(redis_limit(redis_server, ["1/minute"])), plugins=plugins)
        assert (await gw.client.get("/a")).status == 200  # fault tolerant
    await redis_server.start()
    with trio.fail_after(5):
        while (await gw.client.get("/a")).status != 429:
            await trio.sleep(0.05)


async def test_unresponsive_redis_never_stalls_requests(gateway_factory, route_config, plugins, nursery):
    """A Redis that accepts and never answers: each request waits at most the command timeout, then passes."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def hold(stream):
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    cfg = route_config({"limits": ["1/minute"], "key": "global", "backend": "redis",
                        "redis": {"url": f"redis://127.0.0.1:{port}", "connect_timeout": 0.2, "timeout": 0.2}})
    with trio.fail_after(5):
        gw = await gateway_factory(cfg, plugins=plugins)
        start = trio.current_time()
        assert [(await gw.client.get("/a")).status for _ in range(5)] == [200] * 5
    assert trio.current_time() - start < 1.0  # refused at once while the client knows Redis is down
