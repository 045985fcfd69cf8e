"""Fixtures for the cache tests: a gateway with the cache on one route in front of a programmable origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import triogate
import triogate_cache.plugin
import triogate_cache.revalidate
import triogate_cache.store
from triogate.testing import UpstreamServer
from triogate_cache import Cache


class HeaderAuth(triogate.Plugin):
    """Test auth: ``X-User: alice`` makes consumer alice (an API key in disguise)."""

    priority = 1000

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        user = ctx.request.headers.get("x-user")
        if user:
            ctx.principal = triogate.Principal(consumer=user, method="header")


def gateway_config(upstream: UpstreamServer, cache: dict[str, Any] | None = None,
                   route: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"paths": ["/"], "upstream": "u", "plugins": {"cache": dict(cache or {})}}
    r.update(route or {})
    cfg: dict[str, Any] = {"upstreams": {"u": {"targets": [{"url": upstream.url}], "retries": 0}},
                           "routes": {"r": r}}
    cfg.update(top)
    return cfg


@pytest.fixture
def cached(gateway_factory: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``await cached(upstream, cache={...})`` → a running gateway with the cache on route ``r``."""

    async def make(upstream: UpstreamServer, cache: dict[str, Any] | None = None,
                   route: dict[str, Any] | None = None, **top: Any) -> Any:
        plugins = {"cache": Cache, "header-auth": HeaderAuth}
        return await gateway_factory(gateway_config(upstream, cache, route, **top), plugins=plugins)

    return make


def _calls(server: UpstreamServer, path: str) -> int:
    return sum(1 for r in server.requests if r.path == path)


def _status_of(resp: Any) -> str:
    return resp.headers.get("cache-status") or ""


@pytest.fixture
def calls() -> Callable[[UpstreamServer, str], int]:
    """``calls(upstream, path)``: how many requests for ``path`` reached the origin."""
    return _calls


@pytest.fixture
def status_of() -> Callable[[Any], str]:
    """``status_of(response)``: its Cache-Status header ("" when absent)."""
    return _status_of


#: the wall-clock second ``wall_clock`` starts at (a whole second: HTTP dates have no fractions)
WALL_T0 = 1_700_000_000.0


class _PinnedTime:
    """Stands in for the ``time`` module in the cache plugin: wall time = WALL_T0 + trio's clock."""

    @staticmethod
    def time() -> float:
        return WALL_T0 + trio.current_time()


@pytest.fixture
def wall_clock(mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch) -> float:
    """Pin the cache plugin's wall clock (request/response times, ages from ``Date``) to trio's mock clock.

    With the real clock a response dated ``floor(now)`` is up to a second old when it is stored,
    and a second boundary crossed during the request changes its computed age (and ttl) by one.
    Driven by the mock clock instead, wall time starts at the whole second returned here and
    moves only with ``mock_clock.jump``.
    """
    assert mock_clock.current_time() == 0.0
    for module in (triogate_cache.plugin, triogate_cache.store, triogate_cache.revalidate):  # where wall time is read
        monkeypatch.setattr(module, "time", _PinnedTime)
    return WALL_T0
