"""The pytest fixtures of ``triogate.testing`` (pytest-trio): real servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import trio

from ..devserver import Handler, UpstreamServer
from ..plugins import PluginRegistry
from .gateway import RunningGateway, start_gateway
from .redis import RedisServer

if TYPE_CHECKING:
    from .idp import IdentityProvider

__all__ = ["gateway_factory", "identity_provider", "plugin_registry", "redis_server", "upstream", "upstream_factory"]


@pytest.fixture
async def upstream_factory(nursery: trio.Nursery) -> Callable[..., Awaitable[UpstreamServer]]:
    async def factory(handler: Handler | None = None, **kwargs: Any) -> UpstreamServer:
        server = UpstreamServer(handler, **kwargs)
        await nursery.start(server.run)
        return server

    return factory


@pytest.fixture
async def upstream(upstream_factory: Callable[..., Awaitable[UpstreamServer]]) -> UpstreamServer:
    return await upstream_factory()


@pytest.fixture
async def gateway_factory(nursery: trio.Nursery) -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    started: list[RunningGateway] = []

    async def factory(config: Mapping[str, Any] | str, **kwargs: Any) -> RunningGateway:
        gw = await start_gateway(nursery, config, **kwargs)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        await gw.stop()


@pytest.fixture
def plugin_registry() -> PluginRegistry:
    return PluginRegistry(autoload=False)


@pytest.fixture
async def identity_provider(nursery: trio.Nursery) -> IdentityProvider:
    """A started :class:`IdentityProvider` (JWKS, OIDC discovery, RFC 7662 introspection) on loopback."""
    # imported here, not at the top: it needs the ``testing-idp`` extra, and only its users should
    from .idp import IdentityProvider

    return await IdentityProvider().start(nursery)


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    """A started :class:`RedisServer` (``.url``); stopped and removed after the test."""
    server = RedisServer()
    try:
        await server.start()
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.aclose()
