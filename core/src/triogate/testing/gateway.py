"""A gateway built from a config dict or TOML string: served on loopback inside a test's
nursery (:func:`start_gateway`), or only loaded and validated (:func:`load_gateway`)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import trio

from ..app import Gateway
from ..config import Config, ConfigError, parse_config, structure
from ..plugin import Plugin
from ..plugins import PluginRegistry
from ..serving import serve
from .client import GatewayClient

__all__ = ["RunningGateway", "load_gateway", "plugin_config", "start_gateway"]

ConfigSource = Mapping[str, Any] | str | Config


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
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def reload(self, config: Mapping[str, Any] | str) -> list[str]:
        """Reload like SIGHUP does; returns the errors (empty on success), the old config keeps serving."""
        try:
            cfg = _to_config(config, self.gateway.config.gateway.listen)
        except ConfigError as exc:
            return [f"{exc.source}: {e}" for e in exc.errors]
        return await self.gateway.reload(cfg)

    async def stop(self) -> None:
        self._stop.set()
        await self._done.wait()
        await self.client.aclose()


def _to_config(config: ConfigSource, listen: Any = None) -> Config:
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
    config: ConfigSource,
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
    gateway = load_gateway(config, plugins=plugins, hooks=hooks, autoload=autoload, registry=registry)
    stop = trio.Event()
    done = trio.Event()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(gateway, shutdown_trigger=stop.wait, task_status=task_status)
        finally:
            done.set()

    bound = await nursery.start(run)
    return RunningGateway(gateway, bound, stop, done)


def load_gateway(
    config: ConfigSource,
    *,
    plugins: Mapping[str, type[Plugin]] | None = None,
    hooks: Sequence[ModuleType] = (),
    autoload: bool = False,
    registry: PluginRegistry | None = None,
) -> Gateway:
    """Load ``config`` the way ``triogate check`` and a reload do, without serving it.

    Every plugin instance is built and every cross-reference checked: a mistake raises
    :class:`~triogate.ConfigError` with every error and its key path. The returned
    :class:`~triogate.Gateway` is not started; ``gateway.services`` is what its plugins got
    (``services.instances(MyPlugin)`` finds them). Arguments as for :func:`start_gateway`;
    a :class:`~triogate.Config` (e.g. from ``triogate.loads_config(text, env=...)``) is used as is.
    """
    reg = registry if registry is not None else PluginRegistry(autoload=autoload)
    for name, cls in (plugins or {}).items():
        reg.register(name, cls)
    reg.hook_modules.extend(hooks)
    return Gateway(_to_config(config), registry=reg)


def plugin_config(plugin: type[Plugin], raw: Mapping[str, Any], *, path: str = "plugin") -> Any:
    """Structure ``raw`` into ``plugin.Config`` exactly as the core does at config load.

    For schema tests without a gateway: returns the frozen config, or raises
    :class:`~triogate.ConfigError` whose ``errors`` carry key paths under ``path``.
    """
    return structure(dict(raw), plugin.Config, path)
