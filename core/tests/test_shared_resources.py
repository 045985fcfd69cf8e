"""services.shared(): one resource per key and scope, started and closed by the core
("config": until a reload retired that config and its requests finished; "process": until
the gateway stops); services.instances() and services.runtime, on a real gateway."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import attrs
import pytest
import trio
import triogate
from triogate.testing import UpstreamServer, load_gateway

EVENTS: list[str] = []
_serial = itertools.count(1)


class Conn:
    """A resource with a background task of its own, like a Redis pool."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.serial = next(_serial)
        self.ticks = 0
        self.closed = False


@asynccontextmanager
async def open_conn(label: str, delay: float = 0.0) -> AsyncIterator[Conn]:
    await trio.sleep(delay)
    conn = Conn(label)
    EVENTS.append(f"open {label}{conn.serial}")

    async def tick() -> None:
        while True:
            conn.ticks += 1
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        try:
            yield conn
        finally:
            conn.closed = True
            EVENTS.append(f"close {label}{conn.serial}")
            nursery.cancel_scope.cancel()


class Plain:
    """A resource without a context manager: its aclose() runs at the scope's end."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.serial = next(_serial)
        EVENTS.append(f"make {label}{self.serial}")

    async def aclose(self) -> None:
        EVENTS.append(f"aclose {self.label}{self.serial}")


class User(triogate.Plugin):
    """Asks for a config-scoped and a process-scoped resource; answers with their serials."""

    priority = 10
    instances_seen: ClassVar[list[User]] = []

    @attrs.define(frozen=True)
    class Config:
        tag: str = triogate.setting("a", description="a label")

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices) -> None:
        self.conn = await gateway.shared(("test", "conn"), lambda: open_conn("conn"))
        self.plain = await gateway.shared(("test", "plain"), lambda: Plain("plain"))
        self.counter = await gateway.shared(("test", "counter"), lambda: open_conn("proc"), scope="process")
        User.instances_seen.append(self)

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        response.headers.set(f"x-{self.config.tag}",
                             f"{self.conn.serial} {self.counter.serial} {ctx.gateway.runtime.config_version}")


def config(upstream: UpstreamServer, **extra: Any) -> dict[str, Any]:
    return {
        "gateway": {"timeouts": {"drain": 10.0}},
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"a": {"paths": ["/a"], "upstream": "u", "plugins": {"user": {"tag": "a"}}},
                   "b": {"paths": ["/b"], "upstream": "u", "plugins": {"user": {"tag": "b"}}}},
        **extra,
    }


@pytest.fixture(autouse=True)
def _reset() -> None:
    EVENTS.clear()
    User.instances_seen = []


async def test_instances_share_per_scope_and_config_scope_closes_after_the_reload_drained(
        upstream_factory, gateway_factory) -> None:
    release = trio.Event()
    entered = trio.Event()

    async def slow(req: triogate.Request) -> triogate.Response:
        if req.path == "/a/slow":
            entered.set()
            await release.wait()
        return triogate.Response(200, [], b"ok")

    upstream = await upstream_factory(slow)
    gw = await gateway_factory(config(upstream), plugins={"user": User})
    a, b = User.instances_seen
    assert a.conn is b.conn and a.plain is b.plain and a.counter is b.counter  # one per key, not per instance
    assert EVENTS == ["open conn1", "make plain2", "open proc3"]
    assert a.conn.ticks >= 1  # its background task runs in the config's nursery
    r = await gw.client.get("/b")
    assert r.headers["x-b"] == f"{a.conn.serial} {a.counter.serial} 1"

    results: list[triogate.Fetched] = []

    async def in_flight() -> None:
        results.append(await gw.client.get("/a/slow"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(in_flight)
        with trio.fail_after(5):
            await entered.wait()
        assert await gw.reload(config(upstream)) == []
        c, d = User.instances_seen[2:]
        assert c.conn is d.conn and c.conn is not a.conn  # the new config has its own
        assert c.counter is a.counter  # the process one survives the reload
        assert (await gw.client.get("/a")).headers["x-a"] == f"{c.conn.serial} {a.counter.serial} 2"
        await trio.sleep(0.1)
        assert not a.conn.closed  # a request still runs on the old config
        release.set()
    assert results[0].status == 200 and results[0].headers["x-a"] == f"{a.conn.serial} {a.counter.serial} 2"
    with trio.fail_after(5):
        while not a.conn.closed:
            await trio.sleep(0.01)
    # newest first, after the retired config drained; the process one stays open
    assert EVENTS[3:] == ["open conn4", "make plain5", "aclose plain2", "close conn1"]
    assert not a.counter.closed
    await gw.stop()
    assert EVENTS[-3:] == ["aclose plain5", "close conn4", "close proc3"]


async def test_concurrent_first_callers_get_one_instance(upstream, gateway_factory) -> None:
    gw = await gateway_factory(config(upstream, routes={"r": {"paths": ["/"], "upstream": "u"}}))
    services = gw.gateway.services
    calls = 0

    def factory() -> Any:
        nonlocal calls
        calls += 1
        return open_conn("slow", delay=0.05)

    got: list[Conn] = []

    async def ask(scope: Any) -> None:
        got.append(await services.shared("slow", factory, scope=scope))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask, "config")
    assert calls == 1 and len({id(c) for c in got}) == 1
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(ask, "process")
    assert calls == 2 and got[5] is got[6] is got[7] and got[5] is not got[0]  # scopes do not mix


async def test_a_failing_factory_raises_a_clear_error_and_is_retried(upstream, gateway_factory) -> None:
    gw = await gateway_factory(config(upstream, routes={"r": {"paths": ["/"], "upstream": "u"}}))
    services = gw.gateway.services
    attempts = 0

    @asynccontextmanager
    async def flaky() -> AsyncIterator[str]:
        nonlocal attempts
        attempts += 1
        await trio.sleep(0.02)
        if attempts == 1:
            raise ConnectionRefusedError("backing store down")
        yield "connected"

    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await services.shared(("test", "flaky"), flaky)
        except triogate.SharedResourceError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:  # both first callers see the one failure
        nursery.start_soon(ask)
        nursery.start_soon(ask)
    assert len(errors) == 2 and attempts == 1
    assert str(errors[0]) == ("shared resource ('test', 'flaky') (config scope) failed to start: "
                              "ConnectionRefusedError: backing store down")
    assert await services.shared(("test", "flaky"), flaky) == "connected"  # tried again
    assert await services.shared(("test", "flaky"), flaky) == "connected" and attempts == 2
    with pytest.raises(ValueError, match="scope: expected one of config, process"):
        await services.shared("x", lambda: 1, scope="cluster")  # type: ignore[arg-type]


async def test_a_startup_hook_whose_resource_fails_rejects_the_reload(upstream, gateway_factory) -> None:
    class Needy(triogate.Plugin):
        @triogate.hookimpl
        async def startup(self, gateway: triogate.GatewayServices) -> None:
            await gateway.shared("plain", lambda: Plain("ok"))
            await gateway.shared("bad", lambda: 1 / 0)

    gw = await gateway_factory(config(upstream), plugins={"user": User, "needy": Needy})
    before = len(EVENTS)
    errors = await gw.reload(config(upstream, plugins={"needy": {}}))
    assert errors == [("plugin needy failed at startup: SharedResourceError: shared resource 'bad' (config scope) "
                       "failed to start: ZeroDivisionError: division by zero")]
    # what the failed config had started is closed at once, newest first
    assert [e.rstrip("0123456789") for e in EVENTS[before:]] == [
        "open conn", "make plain", "make ok", "aclose ok", "aclose plain", "close conn"]
    assert (await gw.client.get("/a")).headers["x-a"].endswith(" 1")


def test_a_config_that_is_only_loaded_has_no_running_scope() -> None:
    gw = load_gateway({"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:9"}]}},
                       "routes": {"r": {"paths": ["/"], "upstream": "u"}}})

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"shared resource 'k': the config scope has not started"):
            await gw.services.shared("k", lambda: 1)

    trio.run(main)


async def test_instances_and_the_runtime_view(upstream, gateway_factory) -> None:
    class Other(triogate.Plugin):
        pass

    gw = await gateway_factory(config(upstream, plugins={"other": {}}), plugins={"user": User, "other": Other})
    services = gw.gateway.services
    users = services.instances(User)
    assert [(u.route, u.config.tag) for u in users] == [("a", "a"), ("b", "b")]
    assert [o.route for o in services.instances(Other)] == [None]
    assert services.instances(triogate.Plugin) == services.plugins
    rt = services.runtime
    assert rt is gw.gateway.runtime
    assert (rt.config_version, rt.worker, rt.in_flight, rt.draining, rt.reloads) == (1, 0, 0, False,
                                                                                      {"ok": 0, "failed": 0})
    assert rt.targets() == [triogate.TargetState("u", upstream.url, True, "closed", 0, rt.targets()[0].open_connections)]
    await gw.client.get("/a")
    assert rt.open_connections == 1  # the test client's keep-alive connection
    new = config(upstream)
    new["upstreams"]["v"] = {"targets": [{"url": "http://127.0.0.1:9"}]}
    assert await gw.reload(new) == []
    assert rt is gw.gateway.services.runtime and rt.config_version == 2 and rt.reloads == {"ok": 1, "failed": 0}
    assert [t.upstream for t in rt.targets()] == ["u", "v"]  # the config now serving


async def test_a_resource_that_dies_later_is_logged_and_made_again(upstream, gateway_factory, caplog) -> None:
    gw = await gateway_factory(config(upstream, routes={"r": {"paths": ["/"], "upstream": "u"}}))
    services = gw.gateway.services
    crash = trio.Event()

    @asynccontextmanager
    async def fragile() -> AsyncIterator[Conn]:
        async def watchdog() -> None:
            await crash.wait()
            raise OSError("connection lost")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watchdog)
            yield Conn("fragile")
            nursery.cancel_scope.cancel()

    first = await services.shared("fragile", fragile)
    crash.set()
    with trio.fail_after(5):
        while not any("shared resource 'fragile' (config scope) failed" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.01)
    crash = trio.Event()
    second = await services.shared("fragile", fragile)
    assert second is not first
    assert (await gw.client.get("/")).status == 200  # the gateway kept serving


async def test_a_resource_that_does_not_close_in_time_is_cancelled(upstream, gateway_factory, caplog) -> None:
    cfg = config(upstream, routes={"r": {"paths": ["/"], "upstream": "u"}})
    cfg["gateway"]["timeouts"]["shutdown"] = 0.2
    gw = await gateway_factory(cfg)
    cancelled = trio.Event()

    @asynccontextmanager
    async def stubborn() -> AsyncIterator[str]:
        try:
            yield "stubborn"
        finally:
            try:
                await trio.sleep_forever()  # e.g. a flush that never completes
            except trio.Cancelled:
                cancelled.set()
                raise

    await gw.gateway.services.shared("stubborn", stubborn, scope="process")
    with trio.fail_after(5):
        await gw.stop()
    assert cancelled.is_set()
    assert any("1 shared resource(s) of the process scope did not close within 0.2 s" in r.getMessage()
               for r in caplog.records)
