"""Bounded work: copies beyond max_in_flight are dropped, bodies over the limit are not mirrored."""

from typing import Any

import trio

MakeGateway = Any


async def test_in_flight_limit_drops_and_counts(make_gateway: MakeGateway) -> None:
    entered, release = trio.Event(), trio.Event()

    async def hanging(request):
        entered.set()
        await release.wait()

    s = await make_gateway({"max_in_flight": 1, "timeout": 30}, shadow_handler=hanging)
    assert (await s.gw.client.get("/api/1")).status == 200
    await s.until(entered.is_set)
    for i in range(3):  # the shadow still holds the first copy
        resp = await s.gw.client.get(f"/api/{i + 2}")
        assert resp.status == 200 and resp.json()["path"] == f"/{i + 2}"
    assert s.plugin.stats.dropped == 3 and s.plugin.stats.in_flight == 1
    release.set()
    await s.until(lambda: s.plugin.stats.mirrored == 1)
    assert [r.path for r in s.shadow.requests] == ["/1"]
    assert (await s.gw.client.get("/api/5")).status == 200  # room again
    await s.until(lambda: s.plugin.stats.mirrored == 2)


async def test_body_over_the_limit_is_not_mirrored(make_gateway: MakeGateway) -> None:
    s = await make_gateway({"max_body_bytes": 10})
    resp = await s.gw.client.post("/api/big", body=b"x" * 11)
    assert resp.status == 200 and resp.json()["body"] == "x" * 11
    assert s.plugin.stats.skipped == 1 and s.plugin.stats.in_flight == 0
    resp = await s.gw.client.post("/api/small", body=b"y" * 10)
    assert resp.status == 200
    await s.until(lambda: s.plugin.stats.mirrored == 1)
    assert [(r.path, r.body.data) for r in s.shadow.requests] == [("/small", b"y" * 10)]
    assert s.plugin.stats.skipped == 1


async def test_streamed_body_is_not_mirrored(make_gateway: MakeGateway) -> None:
    # larger than what the core buffers: it streams to the primary, and is never held for the shadow
    s = await make_gateway({"max_body_bytes": 1 << 20}, gateway={"limits": {"body_buffer_bytes": 1024}})
    assert s.plugin.body_limit == 1024
    body = bytes(range(256)) * 40
    resp = await s.gw.client.post("/api/stream", body=body, headers={"content-type": "application/octet-stream"})
    assert resp.status == 200
    assert s.primary.requests[0].body.data == body
    assert s.plugin.stats.skipped == 1 and s.shadow.requests == []
