"""Three real upstreams (orders, orders-v2, orders-v3) that answer with their own name, and a
gateway whose route ``orders`` (/api) uses the traffic-split plugin."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from triogate import Request
from triogate.testing import RunningGateway, UpstreamServer
from triogate_key_auth import KeyAuthPlugin
from triogate_traffic_split import TrafficSplitPlugin

NAMES = ("orders", "orders-v2", "orders-v3")
CONSUMERS = {f"c{i}": {"credentials": {"key-auth": {"keys": [f"key-{i}"]}}} for i in range(200)}


def split_config(servers: dict[str, UpstreamServer], split: dict[str, Any], *,
                 key_auth: bool = False, trusted: bool = False, gateway: dict[str, Any] | None = None,
                 ) -> dict[str, Any]:
    plugins: dict[str, Any] = {"traffic-split": split}
    if key_auth:
        plugins["key-auth"] = {"key_names": ["x-api-key"], "anonymous": "guest"}
    cfg: dict[str, Any] = {
        "upstreams": {name: {"targets": [{"url": s.url}], "retries": 0} for name, s in servers.items()},
        "routes": {"orders": {"paths": ["/api"], "upstream": "orders", "plugins": plugins}},
        "consumers": {**CONSUMERS, "guest": {}} if key_auth else {},
    }
    cfg["gateway"] = dict(gateway or {})
    if trusted:
        cfg["gateway"]["trusted_proxies"] = ["127.0.0.1/32"]
    return cfg


class Split:
    """Started upstreams plus helpers: ``await split.start(cfg)``, ``await split.served(...)``."""

    def __init__(self, servers: dict[str, UpstreamServer], factory: Callable[..., Awaitable[RunningGateway]]) -> None:
        self.servers = servers
        self.factory = factory
        self.gw: RunningGateway | None = None

    async def start(self, split: dict[str, Any], **kw: Any) -> RunningGateway:
        self.gw = await self.factory(split_config(self.servers, split, **kw),
                                     plugins={"traffic-split": TrafficSplitPlugin, "key-auth": KeyAuthPlugin})
        return self.gw

    async def reload(self, split: dict[str, Any], **kw: Any) -> None:
        assert self.gw is not None
        assert await self.gw.reload(split_config(self.servers, split, **kw)) == []

    async def served(self, headers: dict[str, str] | None = None, path: str = "/api") -> str:
        """The name of the upstream that answered one request."""
        assert self.gw is not None
        r = await self.gw.client.get(path, headers=headers, timeout=5)
        assert r.status == 200, r.content
        return r.json()["served"]

    async def tally(self, headers_of: Callable[[int], dict[str, str]], n: int) -> Counter[str]:
        return Counter([await self.served(headers_of(i)) for i in range(n)])


@pytest.fixture
async def split(upstream_factory: Callable[..., Awaitable[UpstreamServer]],
                gateway_factory: Callable[..., Awaitable[RunningGateway]]) -> Split:
    servers = {}
    for name in NAMES:
        async def handler(req: Request, name: str = name) -> dict[str, str]:
            return {"served": name}
        servers[name] = await upstream_factory(handler, name=name)
    return Split(servers, gateway_factory)
