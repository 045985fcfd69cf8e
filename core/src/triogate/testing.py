"""Test kit for triogate and its plugins: a pytest plugin (``pytest11`` entry point).

Everything runs for real on loopback: a gateway started from a config dict or
TOML string on a free port, programmable upstream servers that record what they
receive, and a client bound to the gateway.

Fixtures (pytest-trio):

- ``upstream``: a started :class:`UpstreamServer` that echoes each request as JSON.
- ``upstream_factory``: ``await upstream_factory(handler=None)`` starts another one.
- ``gateway_factory``: ``await gateway_factory(config, plugins={...}, hooks=[module])``
  returns a :class:`RunningGateway` (``.url``, ``.client``, ``.reload()``).
- ``plugin_registry``: an empty :class:`~triogate.plugins.PluginRegistry` to register into.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import pytest
import trio

from .app import Gateway, serve
from .config import Config, parse_config
from .devserver import Handler, ResetConnection, UpstreamServer, echo_handler, free_port
from .messages import Response
from .plugin import Plugin
from .plugins import PluginRegistry
from .upstream import Fetched, HTTPClient

__all__ = [
    "UpstreamServer", "ResetConnection", "RunningGateway", "GatewayClient", "start_gateway", "raw_request",
    "echo_handler", "free_port",
]

class GatewayClient:
    """A keep-alive HTTP client bound to one gateway (the core's own client)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = HTTPClient(read_timeout=30.0)

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | str | None = None, json_body: Any = None, timeout: float = 30.0, limit: int = 1 << 26,
    ) -> Fetched:
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs = list(headers.items() if isinstance(headers, Mapping) else headers or [])
            hdrs.append(("content-type", "application/json"))
            headers = hdrs
        if isinstance(body, str):
            body = body.encode()
        return await self.http.fetch(method, self.base_url + path, headers=headers, body=body, timeout=timeout,
                                     limit=limit)

    async def stream(self, method: str, path: str, **kwargs: Any) -> Response:
        """Like :meth:`request` but the response body streams (``await resp.body.aclose()`` after)."""
        return await self.http.request(method, self.base_url + path, **kwargs)

    async def get(self, path: str, **kw: Any) -> Fetched:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Fetched:
        return await self.request("POST", path, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()


async def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0,
                      read_until_close: bool = True) -> bytes:
    """Send raw bytes and return everything the server answers (until it closes or ``timeout``)."""
    stream = await trio.open_tcp_stream(host, port)
    out = bytearray()
    try:
        await stream.send_all(data)
        with trio.move_on_after(timeout):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                out += chunk
                if not read_until_close and b"\r\n\r\n" in out:
                    break
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(out)


class RunningGateway:
    """A gateway serving on loopback inside a test's nursery."""

    def __init__(self, gateway: Gateway, bound: list[tuple[str, int]], stop: trio.Event, done: trio.Event) -> None:
        self.gateway = gateway
        self.bound = bound
        self._stop = stop
        self._done = done
        self.client = GatewayClient(self.url)

    @property
    def port(self) -> int:
        return self.bound[0][1]

    @property
    def url(self) -> str:
        host, port = self.bound[0]
        return f"http://{host}:{port}"

    async def reload(self, config: Mapping[str, Any] | str) -> list[str]:
        return await self.gateway.reload(_to_config(config, self.gateway.config.gateway.listen))

    async def stop(self) -> None:
        self._stop.set()
        await self._done.wait()
        await self.client.aclose()


def _to_config(config: Mapping[str, Any] | str | Config, listen: Any = None) -> Config:
    if isinstance(config, Config):
        return config
    raw = tomllib.loads(config) if isinstance(config, str) else json.loads(json.dumps(config))
    gw = raw.setdefault("gateway", {})
    if listen is not None:
        gw["listen"] = [{"address": lst.address, "protocol": lst.protocol, "tls_cert": lst.tls_cert,
                         "tls_key": lst.tls_key} for lst in listen]
        for lst in gw["listen"]:
            for k in ("tls_cert", "tls_key"):
                if lst[k] is None:
                    del lst[k]
    else:
        gw.setdefault("listen", ["127.0.0.1:0"])
    gw.setdefault("access_log", "off")
    return parse_config(raw, "<test>")


async def start_gateway(
    nursery: trio.Nursery,
    config: Mapping[str, Any] | str | Config,
    *,
    plugins: Mapping[str, type[Plugin]] | None = None,
    hooks: Sequence[ModuleType] = (),
    autoload: bool = False,
    registry: PluginRegistry | None = None,
) -> RunningGateway:
    """Start a gateway from a config dict / TOML string; returns once it listens.

    ``listen`` defaults to a free loopback port; ``plugins`` registers plugin classes by
    name; ``autoload=True`` also loads installed entry-point plugins.
    """
    reg = registry if registry is not None else PluginRegistry(autoload=autoload)
    for name, cls in (plugins or {}).items():
        reg.register(name, cls)
    reg.hook_modules.extend(hooks)
    cfg = _to_config(config)
    gateway = Gateway(cfg, registry=reg)
    stop = trio.Event()
    done = trio.Event()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(gateway, shutdown_trigger=stop.wait, task_status=task_status)
        finally:
            done.set()

    bound = await nursery.start(run)
    return RunningGateway(gateway, bound, stop, done)


# --------------------------------------------------------------------------- pytest fixtures


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
