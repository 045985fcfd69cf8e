"""Opt-in hook timings for tracing plugins: ctx.hook_timings and ctx.upstream_started."""

from __future__ import annotations

import trio
import triogate

SEEN: list = []


class Tracer(triogate.Plugin):
    priority = 100_000
    wants_hook_timings = True

    @triogate.hookimpl
    async def pre_route(self, ctx):
        ctx.hook_timings = []

    @triogate.hookimpl
    async def log(self, ctx):
        SEEN.append((list(ctx.hook_timings), ctx.upstream_started, ctx.upstream_seconds, ctx.started))


class Slow(triogate.Plugin):
    priority = 1000

    @triogate.hookimpl
    async def auth(self, ctx):
        await trio.sleep(0.02)

    @triogate.hookimpl
    async def post_response(self, ctx, response):
        return None


class Plain(triogate.Plugin):
    priority = 1000

    @triogate.hookimpl
    async def auth(self, ctx):
        assert ctx.hook_timings is None


async def test_hooks_are_timed_when_a_plugin_asks(gateway_factory, upstream):
    SEEN.clear()
    gw = await gateway_factory({
        "plugins": {"tracer": {}},
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"slow": {}}}},
    }, plugins={"tracer": Tracer, "slow": Slow})
    assert (await gw.client.get("/x")).status == 200
    with trio.fail_after(5):
        while not SEEN:
            await trio.sleep(0.01)
    timings, up_started, up_seconds, started = SEEN[0]
    names = [(n, p) for n, p, _, _ in timings]
    assert ("tracer", "pre_route") not in names  # the hook that creates the list is not in it
    assert ("slow", "auth") in names and ("slow", "post_response") in names
    (auth,) = [t for t in timings if t[:2] == ("slow", "auth")]
    assert auth[3] - auth[2] >= 0.015
    assert auth[2] >= started
    assert up_started is not None and up_seconds is not None
    assert up_started >= auth[3] - started  # the upstream call began after the auth phase


async def test_no_timing_without_a_plugin_that_asks(gateway_factory, upstream):
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"plain": {}}}},
    }, plugins={"plain": Plain})
    assert (await gw.client.get("/x")).status == 200
    assert gw.gateway.pipeline.timed is False
