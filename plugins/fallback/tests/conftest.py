from __future__ import annotations

from typing import Any, ClassVar

import pytest
import triogate
from triogate.testing import UpstreamServer
from triogate_fallback import FallbackPlugin


class LogSpy(triogate.Plugin):
    """Keeps each request's access-log extras and error, as the access log would see them."""

    seen: ClassVar[list[dict[str, Any]]] = []

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        LogSpy.seen.append({**ctx.log_extra, "error": ctx.error, "upstream": ctx.upstream_name})


def answering(status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None):
    async def handler(req: triogate.Request) -> triogate.Response:
        await req.body.read(1 << 20)
        return triogate.Response(status, [("content-length", str(len(body))), *(headers or [])], body)

    return handler


@pytest.fixture(name="answering")
def answering_fixture():
    """``answering(status, body, headers)``: an upstream handler that always gives that answer."""
    return answering


@pytest.fixture
def spy() -> type[LogSpy]:
    LogSpy.seen = []
    return LogSpy


@pytest.fixture
async def backup(upstream_factory) -> UpstreamServer:
    """The fallback upstream: echoes the request (method, path, headers, body) as JSON."""
    return await upstream_factory(name="backup")


@pytest.fixture
def start(gateway_factory, backup: UpstreamServer, spy):
    """A gateway whose route /api -> upstream "primary" (given), with fallback settings (given)."""

    async def make(primary_url: str, fallback: dict, *, upstream: dict | None = None, gateway: dict | None = None,
                   plugins: dict | None = None, extra: dict | None = None, classes: dict | None = None):
        cfg: dict = {
            "upstreams": {"primary": {"targets": [{"url": primary_url}], **(upstream or {})},
                          "backup": {"targets": [{"url": backup.url}]}},
            "routes": {"api": {"paths": ["/api"], "upstream": "primary", "strip_prefix": "/api",
                               "plugins": {"fallback": fallback, "spy": {}, **(plugins or {})}}},
        }
        if gateway:
            cfg["gateway"] = gateway
        if extra:
            cfg.update(extra)
        return await gateway_factory(cfg, plugins={"fallback": FallbackPlugin, "spy": LogSpy, **(classes or {})})

    return make
