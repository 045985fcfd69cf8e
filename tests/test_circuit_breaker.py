"""Passive health (circuit breaker) transitions and active health checks, on real targets."""

from __future__ import annotations

import trio

from triogate import Response
from triogate.upstream import CircuitState


class Switch:
    """An upstream handler whose answer the test flips."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.health = 200

    async def __call__(self, req):
        if req.path == "/health":
            return Response(self.health, [("content-type", "text/plain")], b"health")
        if self.delay:
            await trio.sleep(self.delay)
        return Response(self.status, [("content-type", "text/plain")], b"s%d" % self.status)


def config(*urls: str, **upstream) -> dict:
    return {
        "upstreams": {"u": {"targets": [{"url": u} for u in urls], "retries": 0, **upstream}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def test_closed_open_half_open_closed(upstream_factory, gateway_factory):
    sw = Switch()
    up = await upstream_factory(sw)
    gw = await gateway_factory(config(up.url, circuit_breaker={"failures": 3, "open_seconds": 0.3}))
    breaker = gw.gateway.pipeline.upstreams["u"].targets[0].breaker
    assert (await gw.client.get("/")).status == 200
    sw.status = 502
    for i in range(3):
        assert breaker.state is CircuitState.CLOSED
        assert (await gw.client.get("/")).status == 502  # passed through, counted as a failure
    assert breaker.state is CircuitState.OPEN
    seen = len(up.requests)
    r = await gw.client.get("/")
    assert r.status == 503 and r.headers["content-type"] == "application/problem+json"
    assert len(up.requests) == seen  # open: the target is not contacted
    sw.status = 200
    await trio.sleep(0.35)
    r = await gw.client.get("/")  # cool-down over: one half-open probe goes through and succeeds
    assert r.status == 200
    assert breaker.state is CircuitState.CLOSED
    assert len(up.requests) == seen + 1
    assert (await gw.client.get("/")).status == 200


async def test_failed_half_open_probe_reopens(upstream_factory, gateway_factory):
    sw = Switch()
    sw.status = 504
    up = await upstream_factory(sw)
    gw = await gateway_factory(config(up.url, circuit_breaker={"failures": 2, "open_seconds": 0.3}))
    breaker = gw.gateway.pipeline.upstreams["u"].targets[0].breaker
    for _ in range(2):
        await gw.client.get("/")
    assert breaker.state is CircuitState.OPEN
    await trio.sleep(0.35)
    assert (await gw.client.get("/")).status == 504  # the probe fails...
    assert breaker.state is CircuitState.OPEN  # ...and the circuit opens again at once
    seen = len(up.requests)
    assert (await gw.client.get("/")).status == 503
    assert len(up.requests) == seen


async def test_half_open_allows_one_probe_at_a_time(upstream_factory, gateway_factory):
    sw = Switch()
    sw.status = 502
    up = await upstream_factory(sw)
    gw = await gateway_factory(config(up.url, circuit_breaker={"failures": 1, "open_seconds": 0.2}))
    await gw.client.get("/")
    await trio.sleep(0.25)
    sw.status = 200
    sw.delay = 0.3
    seen = len(up.requests)
    statuses: list[int] = []

    async def one() -> None:
        from triogate.upstream import HTTPClient

        c = HTTPClient()
        try:
            statuses.append((await c.fetch("GET", gw.url + "/")).status)
        finally:
            await c.aclose()

    async with trio.open_nursery() as n:
        for _ in range(4):
            n.start_soon(one)
    assert sorted(statuses) == [200, 503, 503, 503]
    assert len(up.requests) == seen + 1


async def test_connection_failures_open_the_circuit_and_traffic_moves(upstream_factory, gateway_factory):
    a = await upstream_factory(name="a")
    b = await upstream_factory(name="b")
    gw = await gateway_factory(config(a.url, b.url, retries=1, circuit_breaker={"failures": 2, "open_seconds": 60}))
    a.stop()
    await trio.sleep(0.05)
    for _ in range(10):
        assert (await gw.client.get("/")).status == 200  # failed attempts on a are retried on b
    breaker = gw.gateway.pipeline.upstreams["u"].targets[0].breaker
    assert breaker.state is CircuitState.OPEN
    assert len(b.requests) == 10


async def test_active_health_checks_mark_targets_down_and_up(upstream_factory, gateway_factory):
    sw_a, sw_b = Switch(), Switch()
    a = await upstream_factory(sw_a, name="a")
    b = await upstream_factory(sw_b, name="b")
    gw = await gateway_factory(config(a.url, b.url, health_check={
        "path": "/health", "interval": 0.05, "timeout": 0.5, "healthy_threshold": 2, "unhealthy_threshold": 2}))
    target_a = gw.gateway.pipeline.upstreams["u"].targets[0]

    await trio.sleep(0.2)
    assert target_a.healthy
    sw_a.health = 500
    with trio.fail_after(2):
        while target_a.healthy:
            await trio.sleep(0.02)
    before = len([r for r in a.requests if r.path != "/health"])
    for _ in range(10):
        assert (await gw.client.get("/")).status == 200
    assert len([r for r in a.requests if r.path != "/health"]) == before  # all traffic on b
    sw_a.health = 200
    with trio.fail_after(2):
        while not target_a.healthy:
            await trio.sleep(0.02)
    for _ in range(10):
        assert (await gw.client.get("/")).status == 200
    assert len([r for r in a.requests if r.path != "/health"]) == before + 5
    probes = [r for r in b.requests if r.path == "/health"]
    assert probes and probes[0].headers.get("user-agent") == "triogate-health"


async def test_health_check_timeout_counts_as_failure(upstream_factory, gateway_factory):
    async def hanging_health(req):
        if req.path == "/health":
            await trio.sleep(10)
        return {"ok": True}

    a = await upstream_factory(hanging_health)
    gw = await gateway_factory(config(a.url, health_check={
        "path": "/health", "interval": 0.05, "timeout": 0.1, "unhealthy_threshold": 2}))
    target = gw.gateway.pipeline.upstreams["u"].targets[0]
    with trio.fail_after(3):
        while target.healthy:
            await trio.sleep(0.02)
    r = await gw.client.get("/")
    assert r.status == 503
