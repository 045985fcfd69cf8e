"""Plugin discovery (entry-point group ``triogate.plugins``) and local hook modules.

An entry point names a plugin *class*; the core makes one instance per configured
use, so it reads the entry points itself (pluggy's ``load_setuptools_entrypoints``
would register the class object) and registers the instances with pluggy, which
still provides validation (``check_pending``), tracing and hook bookkeeping.
Set ``TRIOGATE_DISABLE_PLUGIN_AUTOLOAD=1`` to load no installed plugin (tests do).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import logging
import os
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from ._version import __version__
from .config import ConfigError, structure
from .fields import key_path
from .hookchain import HOOK_ORDER, PHASES, declared_impls, make_plugin_manager
from .plugin import Plugin
from .tomltext import describe
from .typenames import json_default, type_name

__all__ = [
    "ENTRY_POINT_GROUP",
    "FIRST_PARTY_PLUGINS",
    "PHASES",
    "PluginInfo",
    "PluginRegistry",
    "check_plugin_tables",
    "load_hook_module",
    "make_plugin_manager",
    "plugin_config",
    "plugin_tables",
    "unknown_plugin",
]

ENTRY_POINT_GROUP = "triogate.plugins"
log = logging.getLogger("triogate.plugins")


class PluginInfo:
    """One plugin name: its class, distribution, version, and why it cannot be used (``error``).

    An installed plugin's module is imported on first use of ``cls``/``error``/``hooks``,
    so a gateway imports only the plugins its config uses (``triogate plugins`` and
    ``triogate schema`` import them all).
    """

    def __init__(
        self,
        name: str,
        cls: type[Plugin] | None,
        distribution: str | None = None,
        version: str | None = None,
        error: str | None = None,
        entry_point: md.EntryPoint | None = None,
    ) -> None:
        self.name = name
        self.distribution = distribution
        self.version = version
        self._cls = cls
        self._error = error
        self._entry_point = entry_point

    def _load(self) -> None:
        ep, self._entry_point = self._entry_point, None
        if ep is None or self._error is not None:
            return
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - reported by name, never a bare traceback
            self._error = f"failed to import {ep.value}: {type(exc).__name__}: {exc}"
            return
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            self._error = f"entry point {ep.value} is not a triogate.Plugin subclass"
            return
        self._cls = cls

    @property
    def cls(self) -> type[Plugin] | None:
        if self._entry_point is not None:
            self._load()
        return self._cls

    @property
    def error(self) -> str | None:
        if self._entry_point is not None:
            self._load()
        return self._error

    @property
    def hooks(self) -> list[str]:
        if self.cls is None:
            return []
        implemented = {impl.hook for impl in declared_impls(self.cls)}
        return [n for n in HOOK_ORDER if n in implemented]

    def __repr__(self) -> str:
        return f"<PluginInfo {self.name} {self.distribution or '?'} {self.version or ''}>"


def _core_version() -> str:
    return __version__


def _check_requirement(dist: md.Distribution) -> str | None:
    """An error when the plugin's distribution requires a triogate version we are not."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # packaging is a dependency; stay permissive if it is missing
        return None
    for req_text in dist.requires or []:
        try:
            req = Requirement(req_text)
        except Exception:  # noqa: BLE001, S112 - unparsable metadata is not ours to judge
            continue
        applies = req.name.lower() == "triogate" and (req.marker is None or req.marker.evaluate())
        if applies and req.specifier and not req.specifier.contains(Version(_core_version()), prereleases=True):
            return f"requires triogate{req.specifier}, but triogate {_core_version()} is installed"
    return None


#: plugin name -> the distribution that provides it, for the plugins in this repository
#: (plugins/ and contrib/): an unknown-plugin error names what to install.
FIRST_PARTY_PLUGINS: dict[str, str] = {name: f"triogate-{name}" for name in (
    "acl", "aggregate", "basic-auth", "cache", "cors", "fallback", "ip-restriction", "jwt", "key-auth",
    "mirror", "mtls-auth", "oauth2-introspection", "oidc", "opentelemetry", "prometheus", "rate-limit", "request-size-limit",
    "request-transform", "response-transform", "traffic-split",
)}


class PluginRegistry:
    """The plugin classes available to configs: installed ones plus explicitly registered ones."""

    def __init__(self, autoload: bool | None = None) -> None:
        self.infos: dict[str, PluginInfo] = {}
        # hook modules registered in code (tests, embedding), global like [gateway] hooks
        self.hook_modules: list[ModuleType] = []
        if autoload is None:
            autoload = not os.environ.get("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD")
        self.autoload = autoload
        if autoload:
            self.load_entry_points()

    def load_entry_points(self) -> None:
        """Read the ``triogate.plugins`` entry points; their modules are imported when first used."""
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            error = _check_requirement(dist) if dist is not None else None
            self.infos[ep.name] = PluginInfo(
                ep.name, None, dist.metadata["Name"] if dist else None, dist.version if dist else None,
                error=error, entry_point=ep)

    def register(self, name: str, cls: type[Plugin]) -> None:
        """Make a plugin class available under ``name`` (tests, embedding)."""
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise TypeError(f"{cls!r} is not a triogate.Plugin subclass")
        self.infos[name] = PluginInfo(name, cls, getattr(sys.modules.get(cls.__module__), "__package__", None), None)

    def get(self, name: str) -> PluginInfo | None:
        return self.infos.get(name)

    @property
    def names(self) -> list[str]:
        """Every plugin name, usable or not (imports nothing)."""
        return sorted(self.infos)

    @property
    def available(self) -> list[str]:
        """The names of plugins that load (imports every plugin)."""
        return sorted(n for n, i in self.infos.items() if i.cls is not None)

    @property
    def broken(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error]

    def check_plugin_tables(self, cfg: Any, raw: dict[str, Any] | None = None) -> list[str]:
        """Errors of every plugin table of ``cfg``: what :func:`~triogate.config.parse_config` asks a registry."""
        return check_plugin_tables(cfg, self, raw)


def plugin_tables(cfg: Any, raw: dict[str, Any] | None = None) -> list[tuple[str, str, str | None, Any]]:
    """Every configured plugin use: ``(key path, plugin name, route or None, raw table)``.

    With the ``raw`` TOML dict, plugin tables of routes that failed to validate
    are included too, so their errors are reported in the same run.
    """
    out = [(key_path("plugins", name), name, None, table) for name, table in cfg.plugins.items()]
    routes: dict[str, Any] = {name: route.plugins for name, route in cfg.routes.items()}
    raw_routes = (raw or {}).get("routes")
    if isinstance(raw_routes, dict):
        for rname, rraw in raw_routes.items():
            if rname not in routes and isinstance(rraw, dict) and isinstance(rraw.get("plugins"), dict):
                routes[rname] = rraw["plugins"]
    for rname, plugins in routes.items():
        for name, table in plugins.items():
            out.append((key_path(key_path(key_path("routes", rname), "plugins"), name), name, rname, table))
    return out


def unknown_plugin(path: str, name: str, registry: PluginRegistry) -> str:
    """The error for a plugin name nobody registered: a did-you-mean (as for keys), and for a
    first-party plugin the distribution to install."""
    import difflib

    installed = registry.names
    listed = f"installed: {', '.join(installed) or 'none'}"

    def missing(first_party: str) -> str:
        if not registry.autoload:
            return "installed plugins are ignored because TRIOGATE_DISABLE_PLUGIN_AUTOLOAD is set"
        return f"it comes with the distribution {FIRST_PARTY_PLUGINS[first_party]}, which is not installed"

    if name in FIRST_PARTY_PLUGINS:
        if registry.autoload:
            return f"{path}: plugin {name!r} is not installed (install the distribution {FIRST_PARTY_PLUGINS[name]})"
        return f"{path}: unknown plugin {name!r} ({missing(name)}; {listed})"
    candidates = [*installed, *(n for n in FIRST_PARTY_PLUGINS if n not in installed)]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:
        return f"{path}: unknown plugin {name!r} ({listed})"
    if close[0] in installed:
        return f"{path}: unknown plugin {name!r} (did you mean {close[0]!r}? {listed})"
    return f"{path}: unknown plugin {name!r} (did you mean {close[0]!r}? {missing(close[0])}; {listed})"


class SkipPlugin(Exception):
    """A broken plugin configured with ``plugins_on_error = "skip"``: leave it out."""


def plugin_config(registry: PluginRegistry, name: str, raw: Any, path: str, on_error: str = "fail") -> tuple[Any, int]:
    """Structure one plugin table into ``(Config instance, priority)``.

    Raises :class:`~triogate.ConfigError` with key paths, or :class:`SkipPlugin`
    for a plugin that cannot load when ``on_error == "skip"``.
    """
    info = registry.get(name)
    if info is None:
        raise ConfigError([unknown_plugin(path, name, registry)])
    if info.cls is None:
        if on_error == "skip":
            raise SkipPlugin(f"plugin {name!r} skipped ({path}): {info.error}")
        raise ConfigError([(f"{path}: plugin {name!r} cannot be used: {info.error}"
                            ' (set [gateway] plugins_on_error = "skip" to start without it)')])
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a table, got {describe(raw)}"])
    raw = dict(raw)
    priority = info.cls.priority
    errors: list[str] = []
    if "priority" in raw and "priority" not in attrs.fields_dict(info.cls.Config):
        value = raw.pop("priority")
        if type(value) is int:
            priority = value
        else:
            errors.append(f"{path}.priority: expected an integer, got {describe(value)}")
    try:
        conf = structure(raw, info.cls.Config, path)
    except ConfigError as exc:
        errors.extend(exc.errors)
    if errors:
        raise ConfigError(errors)
    return conf, priority


def check_plugin_tables(cfg: Any, registry: PluginRegistry, raw: dict[str, Any] | None = None) -> list[str]:
    """Validate every plugin table of ``cfg`` against its plugin's Config; key-pathed errors."""
    errors: list[str] = []
    for path, name, _route, table in plugin_tables(cfg, raw):
        try:
            plugin_config(registry, name, table, path, cfg.gateway.plugins_on_error)
        except ConfigError as exc:
            errors.extend(exc.errors)
        except SkipPlugin:
            pass
    for cname, consumer in cfg.consumers.items():
        for pname in consumer.credentials:
            if registry.get(pname) is None:
                errors.append(unknown_plugin(f"consumers.{cname}.credentials.{pname}", pname, registry))
    for rname, route in cfg.routes.items():
        for pname in route.priorities:
            if pname not in route.plugins and pname not in cfg.plugins:
                errors.append(f"routes.{rname}.priorities.{pname}: plugin {pname!r} is not configured on this"
                              " route or globally")
    return errors


def load_hook_module(spec: str, base: Path | None = None) -> ModuleType:
    """Import a local hook module given as a file path (relative to the config) or a module name."""
    if spec.endswith(".py") or "/" in spec or os.sep in spec:
        path = Path(spec)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        mod_name = f"triogate_hooks_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        # compiled from the source every time, never from __pycache__: a .pyc is trusted by the
        # source's mtime in whole seconds and its size, so an edit within the same second that keeps
        # the size (a reload right after a save, a config watch) would run the old code
        exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)  # noqa: S102 - the operator's own hook file
        return module
    return importlib.import_module(spec)


def plugin_summary(info: PluginInfo) -> dict[str, Any]:
    """What ``triogate plugins --verbose`` and the admin API show about one plugin."""
    out: dict[str, Any] = {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
    }
    if info.error:
        out["error"] = info.error
        return out
    cls = info.cls
    assert cls is not None
    out["priority"] = cls.priority
    out["hooks"] = info.hooks
    hints = typing.get_type_hints(cls.Config)
    out["config"] = [
        {"name": f.name, "type": type_name(hints.get(f.name, f.type)), "required": f.default is attrs.NOTHING,
         "default": _default_repr(f), "description": f.metadata.get("description", "")}
        for f in attrs.fields(cls.Config)
    ]
    return out


def _default_repr(f: attrs.Attribute) -> Any:
    d = f.default
    if d is attrs.NOTHING:
        return None
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        try:
            d = d.factory()  # type: ignore[call-arg]
        except TypeError:
            return None
    return json_default(d) if attrs.has(type(d)) else d  # a nested settings object as a table
