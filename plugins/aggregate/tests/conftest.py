"""Fixtures for the aggregate tests: JSON backends on loopback and a gateway with the plugin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from triogate import Request, Response
from triogate.testing import UpstreamServer
from triogate_aggregate import Aggregate


@pytest.fixture
def backend(upstream_factory: Callable[..., Awaitable[UpstreamServer]]) -> Callable[..., Awaitable[UpstreamServer]]:
    """``await backend(data, delay=0.0, status=200, content_type=..., raw=None)``: a JSON backend.

    ``data`` may be a callable ``(request) -> data``; every request is recorded in ``server.requests``.
    """

    async def make(data: Any = None, *, delay: float = 0.0, status: int = 200,
                   content_type: str = "application/json", raw: bytes | None = None) -> UpstreamServer:
        async def handler(req: Request) -> Response:
            if delay:
                await trio.sleep(delay)
            payload = data(req) if callable(data) else data
            if raw is not None:
                return Response(status, [("content-type", content_type)], raw)
            resp = Response.json(payload, status)
            resp.headers.set("content-type", content_type)
            return resp

        return await upstream_factory(handler)

    return make


@pytest.fixture
def aggregate_gateway(gateway_factory: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``await aggregate_gateway({name: server}, plugin_config, paths=[...])``: a gateway with one route."""

    async def make(servers: dict[str, UpstreamServer], plugin: dict[str, Any], *,
                   paths: list[str] | None = None, extra_plugins: dict[str, Any] | None = None,
                   plugin_classes: dict[str, type] | None = None, gateway: dict[str, Any] | None = None) -> Any:
        plugins = {"aggregate": plugin, **(extra_plugins or {})}
        config = {
            "upstreams": {name: {"targets": [{"url": s.url}], "retries": 0} for name, s in servers.items()},
            "routes": {"agg": {"paths": paths or ["/agg"], "plugins": plugins}},
        }
        if gateway:
            config["gateway"] = gateway
        return await gateway_factory(config, plugins={"aggregate": Aggregate, **(plugin_classes or {})})

    return make
