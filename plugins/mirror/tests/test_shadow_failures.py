"""A slow or dead shadow never delays or fails the client's request; copies end with the config."""

from typing import Any

import trio
import triogate
from triogate.testing import free_port

MakeGateway = Any


async def test_slow_shadow_does_not_delay_the_client(make_gateway: MakeGateway) -> None:
    entered, release, finished = trio.Event(), trio.Event(), trio.Event()

    async def sleepy(request):
        entered.set()
        with trio.move_on_after(5):  # "sleeps 5 s" unless the test releases it
            await release.wait()
        finished.set()
        return {"late": True}

    s = await make_gateway({"timeout": 30}, shadow_handler=sleepy)
    with trio.fail_after(5):
        resp = await s.gw.client.get("/api/x")
    assert resp.status == 200 and resp.json()["path"] == "/x"
    await s.until(entered.is_set)
    # the client's answer came while the shadow was still busy with the copy
    assert not finished.is_set() and s.plugin.stats.in_flight == 1 and s.plugin.stats.mirrored == 0
    release.set()
    await s.until(lambda: s.plugin.stats.mirrored == 1)
    assert s.plugin.stats.in_flight == 0


async def test_copy_cancelled_when_the_gateway_stops(make_gateway: MakeGateway) -> None:
    entered, release = trio.Event(), trio.Event()

    async def hanging(request):
        entered.set()
        await release.wait()

    s = await make_gateway({"timeout": 60}, shadow_handler=hanging)
    assert (await s.gw.client.get("/api/x")).status == 200
    await s.until(entered.is_set)
    with trio.fail_after(5):  # not the copy's 60 s timeout: the config's task group is cancelled
        await s.gw.stop()
    assert s.plugin.stats.in_flight == 0 and s.plugin.stats.mirrored == 0
    release.set()


async def test_timeout_counts_as_failed(make_gateway: MakeGateway) -> None:
    release = trio.Event()

    async def hanging(request):
        await release.wait()

    s = await make_gateway({"timeout": 0.05}, shadow_handler=hanging)
    assert (await s.gw.client.get("/api/x")).status == 200
    await s.until(lambda: s.plugin.stats.failed == 1)
    assert s.plugin.stats.mirrored == 0 and s.plugin.stats.in_flight == 0
    release.set()


async def test_dead_shadow_does_not_fail_the_client(make_gateway: MakeGateway) -> None:
    s = await make_gateway(shadow_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    for _ in range(3):
        resp = await s.gw.client.post("/api/x", body=b"hello")
        assert resp.status == 200 and resp.json()["body"] == "hello"
    await s.until(lambda: s.plugin.stats.failed == 3)
    assert s.plugin.stats.mirrored == 0 and s.plugin.stats.in_flight == 0
    assert len(s.primary.requests) == 3


async def test_shadow_errors_are_answers_not_failures(make_gateway: MakeGateway) -> None:
    async def broken(request):
        return triogate.Response.json({"error": "boom"}, status=500)

    s = await make_gateway(shadow_handler=broken)
    assert (await s.gw.client.get("/api/x")).status == 200
    await s.until(lambda: s.plugin.stats.mirrored == 1)
