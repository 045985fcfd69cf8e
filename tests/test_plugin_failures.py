"""A plugin that raises: that request gets 500 problem+json naming the plugin, it is logged,
and the gateway keeps serving. Startup failures name the plugin; shutdown is bounded."""

from __future__ import annotations

import logging
from typing import ClassVar

import attrs
import pytest
import trio
import triogate
from triogate.app import StartupError
from triogate.testing import UpstreamServer, start_gateway


class Boom(triogate.Plugin):
    priority = 500

    @attrs.define(frozen=True)
    class Config:
        phase: str = triogate.setting(description="phase that raises")

    def maybe_raise(self, phase: str) -> None:
        if self.config.phase == phase:
            raise RuntimeError(f"kaboom in {phase}")

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> None:
        self.maybe_raise("pre_route")

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        self.maybe_raise("auth")

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        self.maybe_raise("transform")
        if self.config.phase == "gateway-error":
            raise triogate.GatewayError("slow down", status=429)

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        self.maybe_raise("post_response")

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        self.maybe_raise("log")


class Outer(triogate.Plugin):
    """Runs after every other post_response (highest priority): sees the 500."""

    priority = 5000
    seen: ClassVar[list[int]] = []

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        Outer.seen.append(response.status)


@pytest.mark.parametrize("scope", ["global", "route"])
@pytest.mark.parametrize("phase", ["pre_route", "auth", "transform", "post_response"])
async def test_plugin_raising_gives_500_naming_it_and_the_gateway_lives_on(
    upstream: UpstreamServer, gateway_factory, caplog: pytest.LogCaptureFixture, phase: str, scope: str,
) -> None:
    Outer.seen = []
    boom = {"boom": {"phase": phase}}
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {"outer": {}, **(boom if scope == "global" else {})},
        "routes": {"bad": {"paths": ["/bad"], "upstream": "u", "plugins": boom if scope == "route" else {}},
                   "good": {"paths": ["/good"], "upstream": "u"}},
    }, plugins={"boom": Boom, "outer": Outer})
    with caplog.at_level(logging.ERROR, logger="triogate"):
        r = await gw.client.get("/bad")
    assert r.status == 500
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                   "detail": "plugin boom failed", "request_id": r.headers["x-request-id"], "plugin": "boom"}
    assert Outer.seen == [500]
    (record,) = [rec for rec in caplog.records if "failed in" in rec.getMessage()]
    assert record.getMessage() == (f"plugin boom failed in {phase} [request_id={doc['request_id']}]: "
                                   f"RuntimeError: kaboom in {phase}")
    assert record.exc_info is not None
    # the gateway lives on: the same route again, and another one
    assert (await gw.client.get("/bad")).status == 500
    good = await gw.client.get("/good")
    assert good.status == (500 if scope == "global" else 200)  # a global instance runs on every route
    assert Outer.seen == [500, 500, good.status]


async def test_log_hook_failure_is_logged_and_the_response_unaffected(
    upstream: UpstreamServer, gateway_factory, caplog: pytest.LogCaptureFixture,
) -> None:
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"boom": {"phase": "log"}}}},
    }, plugins={"boom": Boom})
    with caplog.at_level(logging.ERROR, logger="triogate"):
        r = await gw.client.get("/")
        assert r.status == 200
        with trio.fail_after(5):
            while not any("failed in log" in rec.getMessage() for rec in caplog.records):
                await trio.sleep(0.01)
    assert (await gw.client.get("/")).status == 200


async def test_gateway_error_from_a_plugin_keeps_its_status(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"boom": {"phase": "gateway-error"}}}},
    }, plugins={"boom": Boom})
    r = await gw.client.get("/")
    assert r.status == 429
    assert r.json()["detail"] == "slow down"
    assert r.json()["request_id"] == r.headers["x-request-id"]


class Lifecycle(triogate.Plugin):
    events: ClassVar[list[str]] = []

    @attrs.define(frozen=True)
    class Config:
        startup: str = triogate.setting("ok", description="ok, raise, hang or crash-later")
        shutdown: str = triogate.setting("ok", description="ok, raise or hang")

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices, nursery: trio.Nursery) -> None:
        if self.config.startup == "raise":
            raise ConnectionError("redis://cache:6379 refused")
        if self.config.startup == "hang":
            await trio.sleep_forever()
        if self.config.startup == "crash-later":
            async def crasher() -> None:
                await trio.sleep(0.05)
                raise ValueError("background refresh failed")

            nursery.start_soon(crasher)
        Lifecycle.events.append(f"startup {self.name}@{self.route}")

    @triogate.hookimpl
    async def shutdown(self, gateway: triogate.GatewayServices) -> None:
        if self.config.shutdown == "raise":
            raise RuntimeError("flush failed")
        if self.config.shutdown == "hang":
            await trio.sleep_forever()
        Lifecycle.events.append(f"shutdown {self.name}@{self.route}")


class Early(Lifecycle):
    priority = 100


class Late(Lifecycle):
    priority = 10


@pytest.mark.parametrize(("mode", "message"), [
    ("raise", "plugin late@r failed at startup: ConnectionError: redis://cache:6379 refused"),
    ("hang", "plugin late@r failed at startup: startup hook did not finish within 0.2 s (timeouts.startup)"),
])
async def test_startup_failure_names_the_plugin_and_undoes_what_started(
    nursery: trio.Nursery, mode: str, message: str,
) -> None:
    Lifecycle.events = []
    with pytest.raises(StartupError) as info:
        await start_gateway(nursery, {
            "gateway": {"timeouts": {"startup": 0.2}},
            "plugins": {"early": {}},
            "routes": {"r": {"paths": ["/"], "plugins": {"late": {"startup": mode}}}},
        }, plugins={"early": Early, "late": Late})
    assert str(info.value) == message
    assert info.value.plugin == "late@r"
    assert Lifecycle.events == ["startup early@None", "shutdown early@None"]


async def test_shutdown_hooks_run_concurrently_bounded_by_the_deadline(
    gateway_factory, caplog: pytest.LogCaptureFixture,
) -> None:
    Lifecycle.events = []
    gw = await gateway_factory({
        "gateway": {"timeouts": {"shutdown": 0.3}},
        "plugins": {"early": {"shutdown": "hang"}, "late": {"shutdown": "ok"}},
        "routes": {"r": {"paths": ["/"], "plugins": {"late": {"shutdown": "raise"}}}},
    }, plugins={"early": Early, "late": Late})
    assert Lifecycle.events == ["startup early@None", "startup late@None", "startup late@r"]
    with caplog.at_level(logging.ERROR, logger="triogate"):
        start = trio.current_time()
        with trio.fail_after(3):
            await gw.stop()
        assert trio.current_time() - start < 1.5
    assert Lifecycle.events[3:] == ["shutdown late@None"]
    messages = [rec.getMessage() for rec in caplog.records]
    assert "plugin late@r failed in shutdown" in messages
    assert "plugin early: shutdown hook cancelled after 0.3 s (timeouts.shutdown)" in messages


async def test_a_crashing_background_task_is_logged_and_the_gateway_keeps_serving(
    upstream: UpstreamServer, gateway_factory, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="triogate"):
        gw = await gateway_factory({
            "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
            "plugins": {"early": {"startup": "crash-later"}},
            "routes": {"r": {"paths": ["/"], "upstream": "u"}},
        }, plugins={"early": Early})
        with trio.fail_after(5):
            while not any("crashed" in rec.getMessage() for rec in caplog.records):
                await trio.sleep(0.01)
    (record,) = [rec for rec in caplog.records if "crashed" in rec.getMessage()]
    assert record.getMessage().endswith("of plugin early crashed")
    assert "background refresh failed" in str(record.exc_info[1])
    assert (await gw.client.get("/")).status == 200


async def test_a_hook_returning_something_else_than_a_response_is_that_plugins_failure(
    upstream: UpstreamServer, gateway_factory, caplog: pytest.LogCaptureFixture,
) -> None:
    class Sloppy(triogate.Plugin):
        @triogate.hookimpl
        async def auth(self, ctx: triogate.Context) -> dict:
            return {"status": 403}

    class SloppyPost(triogate.Plugin):
        @triogate.hookimpl
        async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> int:
            return 204

    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"a": {"paths": ["/a"], "upstream": "u", "plugins": {"sloppy": {}}},
                   "b": {"paths": ["/b"], "upstream": "u", "plugins": {"sloppy-post": {}}}},
    }, plugins={"sloppy": Sloppy, "sloppy-post": SloppyPost})
    with caplog.at_level(logging.ERROR, logger="triogate"):
        a = await gw.client.get("/a")
        b = await gw.client.get("/b")
    assert (a.status, a.json()["plugin"]) == (500, "sloppy")
    assert (b.status, b.json()["plugin"]) == (500, "sloppy-post")
    messages = [rec.getMessage() for rec in caplog.records]
    assert any("plugin sloppy failed in auth" in m and "auth returned dict, expected a triogate.Response or None" in m
               for m in messages)
    assert any("post_response returned int" in m for m in messages)
    assert upstream.requests[0].path == "/b"
