"""The pytest fixtures of ``triogate.testing`` (pytest-trio): real servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import trio

from ..devserver import Handler, UpstreamServer
from ..plugins import PluginRegistry
from .gateway import RunningGateway, start_gateway
from .redis import RedisCluster, RedisSentinel, RedisServer

if TYPE_CHECKING:
    from .idp import IdentityProvider

__all__ = [
    "gateway_factory", "identity_provider", "plugin_registry", "redis_cluster", "redis_sentinel", "redis_server",
    "upstream", "upstream_factory",
]


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


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    """A started 3-primary + 3-replica :class:`RedisCluster`, shared by the tests of one module.

    Module-scoped because a cluster takes about two seconds to form; a synchronous fixture because
    pytest-trio's async fixtures live in one test's trio run. Tests sharing it use their own keys
    (a ``key_prefix`` each) and leave it healthy (:meth:`RedisCluster.restart` after a kill).
    """
    cluster = RedisCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[RedisSentinel]:
    """A started :class:`RedisSentinel` (1 primary, 1 replica, 3 sentinels), shared by the tests of one module.

    Synchronous and module-scoped for the same reasons as ``redis_cluster``.
    """
    sentinel = RedisSentinel()
    sentinel.start()
    try:
        yield sentinel
    finally:
        sentinel.close()
