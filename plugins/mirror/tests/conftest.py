from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
import trio
import triogate
from triogate.testing import UpstreamServer
from triogate_mirror import MirrorPlugin


class Stamp(triogate.Plugin):
    """A transform before the mirror's: the copy must carry what it changed."""

    priority = 800

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        req = ctx.request
        req.headers.set("x-stamp", "stamped")
        req.headers.remove("x-secret")
        req.query = (req.query + "&" if req.query else "") + "stamped=1"
        if req.method == "POST":
            req.body = triogate.Body(b"stamped:" + await req.body.read(1 << 20))


class Recorder(triogate.Plugin):
    """Keeps every request's log_extra, as the access log gets it."""

    seen: ClassVar[list[dict]] = []

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        Recorder.seen.append(dict(ctx.log_extra))


class Setup:
    def __init__(self, gw: Any, primary: UpstreamServer, shadow: UpstreamServer | None) -> None:
        self.gw = gw
        self.primary = primary
        self.shadow = shadow
        self.logged = Recorder.seen
        [self.plugin] = gw.gateway.services.instances(MirrorPlugin)

    async def until(self, ok: Callable[[], bool]) -> None:
        """Wait (bounded) for a condition on the shadow or the counters: copies run in the background."""
        with trio.fail_after(5):
            while not ok():
                await trio.sleep(0.005)


MakeGateway = Callable[..., Awaitable[Setup]]


@pytest.fixture
def make_gateway(upstream_factory, gateway_factory) -> MakeGateway:
    Recorder.seen = []

    async def make(mirror: dict | None = None, *, shadow_handler: Any = None, shadow_url: str | None = None,
                   stamp: bool = False, gateway: dict | None = None, route: dict | None = None) -> Setup:
        primary = await upstream_factory(name="primary")
        shadow = None
        if shadow_url is None:
            shadow = await upstream_factory(shadow_handler, name="shadow")
            shadow_url = shadow.url
        r: dict = {"paths": ["/api"], "upstream": "primary", "strip_prefix": "/api", "plugins": {}, **(route or {})}
        if stamp:
            r["plugins"]["stamp"] = {}
        cfg: dict = {
            "upstreams": {"primary": {"targets": [{"url": primary.url}]},
                          "shadow": {"targets": [{"url": shadow_url}], "retries": 0}},
            "routes": {"api": r},
            "plugins": {"mirror": {"upstream": "shadow", **(mirror or {})}, "recorder": {}},
        }
        if gateway:
            cfg["gateway"] = gateway
        gw = await gateway_factory(cfg, plugins={"mirror": MirrorPlugin, "stamp": Stamp,
                                                         "recorder": Recorder})
        return Setup(gw, primary, shadow)

    return make
