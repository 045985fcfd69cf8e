"""A gateway with one route and request-transform in front of the echo upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from triogate import Plugin, Principal, hookimpl
from triogate_request_transform import RequestTransform


class FakeAuth(Plugin):
    """Sets a principal from the x-test-sub header (tests only)."""

    priority = 1000

    @hookimpl
    async def auth(self, ctx):
        sub = ctx.request.headers.get("x-test-sub")
        if sub is not None:
            ctx.principal = Principal(consumer="acme", claims={"sub": sub, "org": {"id": 7}})


@pytest.fixture
def transform_gateway(upstream, gateway_factory) -> Callable[..., Awaitable[Any]]:
    """``await transform_gateway(rules, paths=[...], route={...})`` → the running gateway (echo upstream)."""

    async def make(rules: dict[str, Any], *, paths: list[str] | None = None, route: dict[str, Any] | None = None,
                   gateway: dict[str, Any] | None = None) -> Any:
        config = {
            "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
            "routes": {"r": {"paths": paths or ["/r"], "upstream": "echo", **(route or {}),
                             "plugins": {"request-transform": rules, "fake-auth": {}}}},
        }
        if gateway:
            config["gateway"] = gateway
        return await gateway_factory(config, plugins={"request-transform": RequestTransform, "fake-auth": FakeAuth})

    return make
