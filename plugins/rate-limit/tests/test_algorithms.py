"""Window math of each algorithm, identical on the memory backend and the Redis Lua script.

Both backends get an injected clock (microseconds) so the same vectors run on both.
"""

import pytest
from triogate.testing import RedisServer
from triogate_rate_limit import Check, MemoryBackend, RedisBackend
from triogate_redis import RedisClient, RedisConfig

S = 1_000_000
T0 = 1_000_000 * 60 * S  # aligned to minute (and second) windows


@pytest.fixture(params=["memory", "redis"])
async def make(request, nursery):
    clock = [T0]
    server = None
    if request.param == "memory":
        backend = MemoryBackend(1000, clock=lambda: clock[0])
    else:
        server = RedisServer()
        await server.start()
        client = RedisClient(RedisConfig(url=server.url, timeout=2.0))
        await client.start(nursery)
        backend = RedisBackend(client, clock=lambda: clock[0])

    async def decide(*checks, at=None):
        if at is not None:
            clock[0] = T0 + int(at * S)
        return await backend.decide(list(checks))

    try:
        yield decide
    finally:
        if server is not None:
            client.stop()
            await server.aclose()


def minute(algorithm, count=3, key="k", burst=None):
    return Check(f"{algorithm}:{key}", algorithm, count, 60 * S, burst or count)


async def test_fixed_window(make):
    c = minute("fixed-window")
    for remaining in (2, 1, 0):
        ok, [r] = await make(c, at=10)
        assert ok and r.remaining == remaining and r.reset_us == 50 * S and r.retry_us == 0
    ok, [r] = await make(c, at=45)
    assert not ok and r.remaining == 0 and r.retry_us == 15 * S and r.reset_us == 15 * S
    ok, [r] = await make(c, at=60)  # a new window: everything back
    assert ok and r.remaining == 2 and r.reset_us == 60 * S


async def test_fixed_window_boundary_burst_is_allowed(make):
    """The known weakness of fixed windows (2x at the boundary); the sliding window does not have it."""
    c = minute("fixed-window")
    assert all([(await make(c, at=59.9))[0] for _ in range(3)])
    assert all([(await make(c, at=60.0))[0] for _ in range(3)])


async def test_sliding_window(make):
    c = minute("sliding-window")
    for remaining in (2, 1, 0):
        ok, [r] = await make(c, at=0)
        assert ok and r.remaining == remaining and r.reset_us == 60 * S
    ok, [r] = await make(c, at=59)
    # the current window is full: wait for the next one, where 3 * weight + 1 <= 3 needs weight <= 2/3
    assert not ok and r.retry_us == 1 * S + 20 * S
    # half-way into the next window the previous 3 count as 1.5: one more fits (1.5 + 1 <= 3), not two
    ok, [r] = await make(c, at=90)
    assert ok and r.remaining == 0 and r.reset_us == 30 * S
    ok, [r] = await make(c, at=90)
    # current 1, previous 3 * w: 3 * w + 1 + 1 <= 3 needs w <= 1/3, i.e. 40 s into the window: 10 s from now
    assert not ok and r.retry_us == 10 * S
    ok, [r] = await make(c, at=100)
    assert ok
    ok, [r] = await make(c, at=240)  # two windows later nothing is left of the past
    assert ok and r.remaining == 2


async def test_sliding_window_smooths_the_boundary(make):
    c = minute("sliding-window")
    assert all([(await make(c, at=59.9))[0] for _ in range(3)])
    results = [(await make(c, at=60.0))[0] for _ in range(3)]
    assert results == [False, False, False]  # 3 * 0.99999 + 1 > 3


async def test_gcra_token_bucket(make):
    c = minute("gcra", count=3)  # one every 20 s, up to 3 at once
    for remaining in (2, 1, 0):
        ok, [r] = await make(c, at=0)
        assert ok and r.remaining == remaining
    ok, [r] = await make(c, at=0)
    assert not ok and r.retry_us == 20 * S and r.reset_us == 60 * S
    ok, [r] = await make(c, at=19)
    assert not ok and r.retry_us == 1 * S
    ok, [r] = await make(c, at=20)
    assert ok and r.remaining == 0
    ok, [r] = await make(c, at=80)  # 60 s later the bucket is full again
    assert ok and r.remaining == 2


async def test_gcra_burst(make):
    c = minute("gcra", count=60, burst=5)  # 1/s sustained, 5 at once
    oks = [(await make(c, at=0))[0] for _ in range(6)]
    assert oks == [True] * 5 + [False]
    ok, [r] = await make(c, at=1)
    assert ok and r.remaining == 0
    ok, [r] = await make(c, at=1)
    assert not ok and r.retry_us == 1 * S


async def test_gcra_fractional_interval(make):
    c = Check("gcra:third", "gcra", 3, 1 * S, 1)  # one per 333333.33 us
    assert (await make(c, at=0))[0]
    ok, [r] = await make(c, at=0.3333)
    assert not ok and r.retry_us == 34
    assert (await make(c, at=0.33334))[0]


async def test_rejected_decision_consumes_nothing(make):
    """Several limits in one decision: all or nothing."""
    per_minute = minute("fixed-window", count=5, key="a")
    per_second = Check("fixed-window:b", "fixed-window", 2, 1 * S, 2)
    for _ in range(2):
        assert (await make(per_minute, per_second, at=0))[0]
    ok, [m, s] = await make(per_minute, per_second, at=0)
    assert not ok and s.retry_us == 1 * S and m.remaining == 2  # would have been 3 - 1 had it counted
    ok, [m, s] = await make(per_minute, per_second, at=1)
    assert ok and m.remaining == 2  # 3 used in total: the rejected one did not count


async def test_keys_are_independent(make):
    a, b = minute("fixed-window", count=1, key="a"), minute("fixed-window", count=1, key="b")
    assert (await make(a, at=0))[0] and (await make(b, at=0))[0]
    assert not (await make(a, at=0))[0]
