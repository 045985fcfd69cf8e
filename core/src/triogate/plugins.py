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
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .plugin import Plugin

__all__ = ["PluginInfo", "PluginRegistry", "make_plugin_manager", "load_hook_module", "ENTRY_POINT_GROUP",
           "PHASES"]

ENTRY_POINT_GROUP = "triogate.plugins"
PHASES = ("pre_route", "auth", "transform", "post_response", "log")
log = logging.getLogger("triogate.plugins")


@attrs.define
class PluginInfo:
    name: str
    cls: type[Plugin] | None
    distribution: str | None = None
    version: str | None = None
    error: str | None = None

    @property
    def hooks(self) -> list[str]:
        if self.cls is None:
            return []
        names = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "triogate_spec")]
        return [n for n in names if hasattr(getattr(self.cls, n, None), "triogate_impl")]


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("triogate")
    pm.add_hookspecs(hookspecs)
    return pm


def _core_version() -> str:
    from . import __version__

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
        except Exception:  # noqa: BLE001 - unparsable metadata is not ours to judge
            continue
        if req.name.lower() == "triogate" and (req.marker is None or req.marker.evaluate()):
            if req.specifier and not req.specifier.contains(Version(_core_version()), prereleases=True):
                return f"requires triogate{req.specifier}, but triogate {_core_version()} is installed"
    return None


class PluginRegistry:
    """The plugin classes available to configs: installed ones plus explicitly registered ones."""

    def __init__(self, autoload: bool | None = None) -> None:
        self.infos: dict[str, PluginInfo] = {}
        # hook modules registered in code (tests, embedding), global like [gateway] hooks
        self.hook_modules: list[ModuleType] = []
        if autoload is None:
            autoload = not os.environ.get("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD")
        if autoload:
            self.load_entry_points()

    def load_entry_points(self) -> None:
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, None, dist.metadata["Name"] if dist else None, dist.version if dist else None)
            if dist is not None:
                info.error = _check_requirement(dist)
            if info.error is None:
                try:
                    cls = ep.load()
                except Exception as exc:  # noqa: BLE001 - reported by name, never a bare traceback
                    info.error = f"failed to import {ep.value}: {type(exc).__name__}: {exc}"
                else:
                    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
                        info.error = f"entry point {ep.value} is not a triogate.Plugin subclass"
                    else:
                        info.cls = cls
            self.infos[ep.name] = info

    def register(self, name: str, cls: type[Plugin]) -> None:
        """Make a plugin class available under ``name`` (tests, embedding)."""
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise TypeError(f"{cls!r} is not a triogate.Plugin subclass")
        self.infos[name] = PluginInfo(name, cls, getattr(sys.modules.get(cls.__module__), "__package__", None), None)

    def get(self, name: str) -> PluginInfo | None:
        return self.infos.get(name)

    @property
    def available(self) -> list[str]:
        return sorted(n for n, i in self.infos.items() if i.cls is not None)

    @property
    def broken(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error]


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
        module_spec.loader.exec_module(module)
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
    out["config"] = [
        {"name": f.name, "type": _type_repr(f.type), "default": _default_repr(f),
         "description": f.metadata.get("description", "")}
        for f in attrs.fields(cls.Config)
    ]
    return out


def _type_repr(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    return getattr(tp, "__name__", None) if getattr(tp, "__module__", "") == "builtins" else str(tp).replace("typing.", "")


def _default_repr(f: attrs.Attribute) -> Any:
    d = f.default
    if d is attrs.NOTHING:
        return None
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        try:
            return d.factory()  # type: ignore[call-arg]
        except TypeError:
            return None
    return d
