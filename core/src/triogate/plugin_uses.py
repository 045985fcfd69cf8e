"""The plugin uses of one loaded config: instances, hook modules, what they declare.

Each configured plugin table (global or per route) becomes one instance; each hook module
(``[gateway] hooks`` and modules registered in code) one global use. Every use is
registered in one :class:`~triogate.hookchain.HookChains`, which orders and calls them.
Problems are collected with their key paths, never raised one at a time, so
``triogate check`` prints them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fields
from .admission import RESERVED_REQUEST_HEADERS
from .config import Config, ConfigError, underscore_error
from .hookchain import Chain, HookChains, Use
from .plugins import PluginRegistry, SkipPlugin, check_plugin_tables, load_hook_module, plugin_config

if TYPE_CHECKING:
    from .context import GatewayServices
    from .plugin import Plugin

__all__ = ["PluginUses"]



class PluginUses:
    """Every plugin instance and hook module of one config, registered in :attr:`hooks`.

    ``errors`` holds every problem found (key-pathed); the config is unusable unless it is empty.
    """

    def __init__(self, config: Config, registry: PluginRegistry, services: GatewayServices) -> None:
        self.config = config
        self.hooks = HookChains()
        self.errors: list[str] = []
        self.instances: list[Plugin] = []
        self.skipped: list[str] = []  # plugins left out with plugins_on_error = "skip"
        self.identity: set[str] = set()  # headers declared by plugin instances (Plugin.identity_headers)
        self._request_id_header = config.gateway.request_id_header.lower()
        errors = self.errors
        on_error = config.gateway.plugins_on_error
        errors.extend(check_plugin_tables(config, registry))
        self.global_uses = [u for name, raw in config.plugins.items()
                            if (u := self._instantiate(registry, services, name, raw, None, _key("plugins", name),
                                                       on_error))]
        self._hook_modules(registry)
        self.route_uses: dict[str, list[Use]] = {}
        for rname, rcfg in config.routes.items():
            self.route_uses[rname] = [
                u for pname, raw in rcfg.plugins.items()
                if (u := self._instantiate(registry, services, pname, raw, rname,
                                           _key("routes", rname, "plugins", pname), on_error))]
        errors.extend(self.hooks.seal())

    def chain(self, route: str, priorities: dict[str, int]) -> Chain:
        """A route's chain: its own instances, and the global uses it does not replace."""
        own = self.route_uses.get(route, [])
        overridden = {u.name for u in own}
        return self.hooks.chain([u for u in self.global_uses if u.name not in overridden] + own, priorities)

    def global_chain(self) -> Chain:
        """The chain of requests before (or without) a route: global instances and hook modules."""
        return self.hooks.chain(self.global_uses, {}, for_route=False)

    # ------------------------------------------------------------------ building

    def _instantiate(
        self, registry: PluginRegistry, services: GatewayServices, name: str, raw: Any, route: str | None,
        path: str, on_error: str,
    ) -> Use | None:
        try:
            conf, priority = plugin_config(registry, name, raw, path, on_error)
        except ConfigError:
            return None  # already reported by check_plugin_tables
        except SkipPlugin as exc:
            self.skipped.append(str(exc))  # the Gateway logs these when it loads this config
            return None
        info = registry.get(name)
        assert info is not None and info.cls is not None
        try:
            inst = info.cls(conf, services, route)
        except (ValueError, TypeError) as exc:
            self.errors.append(f"{path}: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a plugin failing to build is a config error, not a traceback
            self.errors.append(f"{path}: plugin {name!r} failed to initialize: {type(exc).__name__}: {exc}")
            return None
        inst.name = name
        try:
            declared = self._declare(path, inst.identity_headers()) + self._read_names(path, inst.request_header_names())
        except Exception as exc:  # noqa: BLE001 - a plugin's declaration failing is a config error
            declared = [f"{path}: plugin {name!r} failed to declare its headers: {type(exc).__name__}: {exc}"]
        use = Use(name, inst, priority, "route" if route else "global")
        problems = self.hooks.register(use, path, f"plugin {name!r}", declared)
        if problems:
            self.errors.extend(problems)
            return None
        self.instances.append(inst)
        return use

    def _hook_modules(self, registry: PluginRegistry) -> None:
        """Load ``[gateway] hooks`` and the modules registered in code: global uses, ``PRIORITY`` (default 0)."""
        source = self.config.source
        base = Path(source).parent if source and not source.startswith("<") else Path.cwd()
        modules: list[tuple[str, str, str, Any]] = []  # (key path, what names it, use name, module)
        for i, spec in enumerate(self.config.gateway.hooks):
            try:
                modules.append((f"gateway.hooks[{i}]", f"hook module {spec!r}", f"hooks:{spec}",
                                load_hook_module(spec, base)))
            except Exception as exc:  # noqa: BLE001 - reported with its key path
                self.errors.append(f"gateway.hooks[{i}]: cannot load {spec!r}: {type(exc).__name__}: {exc}")
        modules.extend((f"hook module {m.__name__}", "", f"hooks:{m.__name__}", m) for m in registry.hook_modules)
        for label, owner, name, module in modules:
            priority = getattr(module, "PRIORITY", 0)
            if type(priority) is not int:
                self.errors.append(f"{label}: PRIORITY must be an integer, got {priority!r}")
                continue
            use = Use(name, module, priority, "hooks")
            problems = self.hooks.register(use, label, owner)
            if problems:
                self.errors.extend(problems)
                continue
            self.errors.extend(self._declare(f"{label}: IDENTITY_HEADERS", getattr(module, "IDENTITY_HEADERS", ())))
            self.global_uses.append(use)

    def _declare(self, path: str, names: Iterable[Any]) -> list[str]:
        """Record the identity headers a use asserts; errors for names it cannot assert."""
        problems = []
        for header in names:
            if not isinstance(header, str) or not fields.is_header_name(header):
                problems.append(f"{path}: identity header {header!r} is not a header name")
            elif header.lower() in RESERVED_REQUEST_HEADERS or header.lower() == self._request_id_header:
                problems.append(f"{path}: {header!r} cannot be an identity header: clients send it, and it would be"
                                " removed from every request")
            else:
                self.identity.add(header.lower())
        return problems

    def _read_names(self, path: str, names: Iterable[tuple[str, str]]) -> list[str]:
        """Errors for request headers an instance reads that can never arrive (``_`` in the name)."""
        mode = self.config.gateway.underscores_in_headers
        if mode == "allow":
            return []
        return [underscore_error(f"{path}.{key}", header, mode) for key, header in names if "_" in header]


def _key(*steps: str) -> str:
    path = ""
    for step in steps:
        path = fields.key_path(path, step)
    return path
