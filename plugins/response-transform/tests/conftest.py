"""A gateway with one route and response-transform in front of a programmable upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from triogate import Plugin, Principal, hookimpl
from triogate_response_transform import ResponseTransform


class FakeAuth(Plugin):
    """Sets a principal from the x-test-sub header (tests only)."""

    priority = 1000

    @hookimpl
    async def auth(self, ctx):
        sub = ctx.request.headers.get("x-test-sub")
        if sub is not None:
            ctx.principal = Principal(consumer="acme", claims={"sub": sub})


@pytest.fixture
def response_gateway(upstream_factory, gateway_factory) -> Callable[..., Awaitable[Any]]:
    """``await response_gateway(rules, handler, paths=[...])`` → (gateway, upstream server)."""

    async def make(rules: dict[str, Any], handler: Any = None, *, paths: list[str] | None = None,
                   plugins: dict[str, Any] | None = None, classes: dict[str, type] | None = None) -> Any:
        up = await upstream_factory(handler)
        config = {
            "upstreams": {"u": {"targets": [{"url": up.url}], "retries": 0}},
            "routes": {"r": {"paths": paths or ["/r"], "upstream": "u",
                             "plugins": {"response-transform": rules, "fake-auth": {}, **(plugins or {})}}},
        }
        gw = await gateway_factory(config, plugins={"response-transform": ResponseTransform, "fake-auth": FakeAuth,
                                                    **(classes or {})})
        return gw, up

    return make
