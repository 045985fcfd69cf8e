"""What a reload would change: the difference between two validated configs, secrets masked.

``triogate diff`` and the admin API's ``POST /reload?dry_run=1`` use it. Both configs are rendered
to plain data first (:func:`config_data`): every plugin table structured by its plugin's
``Config`` (so defaults count, and a value written out that equals its default is no change),
every secret wrapped by :mod:`triogate.masking`. Then routes, upstreams (and their targets, by
URL), consumers and plugins are matched by name, and :func:`diff_configs` returns one
:class:`Change` per added, removed or changed item or setting. :func:`format_changes` prints them
one per line::

    + route "new" (paths = ["/new"], upstream = "users")
    ~ route "api": plugins: + rate-limit (limits = ["10/s"])
    ~ upstream "users": targets: - http://127.0.0.1:9001  + http://127.0.0.1:9003
    ~ plugin "jwt" on route "api": secret changed: <secret 1a2b3c4d> → <secret 9f8e7d6c>
    - consumer "bob"

Route order is not compared: routes match by specificity, not by their order in the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs

from .config import Config, ConfigError, ConsumerConfig, RouteConfig, UpstreamConfig
from .fields import key_path
from .masking import Secret, all_secret, has_secret, masked, plain
from .plugins import PluginRegistry, SkipPlugin, plugin_config

__all__ = ["RESTART_ONLY", "Change", "config_data", "diff_configs", "format_changes", "render_config"]

#: settings a reload does not apply (the listeners and the worker processes are made at start)
RESTART_ONLY: frozenset[tuple[str, str]] = frozenset({
    ("gateway", "listen"), ("gateway", "workers"), ("gateway", "http1_parser"), ("gateway", "watch"),
    ("admin", "listen"),
})
_RESTART_NOTE = "takes effect after a restart, not a reload"


# --------------------------------------------------------------------------- rendering


def _credential(value: Any, secret_keys: frozenset[str] | None) -> Any:
    if secret_keys is None:
        return all_secret(value)
    if isinstance(value, dict):
        return {str(k): plain(v, secret=True) if k in secret_keys else _credential(v, secret_keys)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_credential(v, secret_keys) for v in value]
    return plain(value)  # names that look like credentials (a map key "secret") are secrets here too


def _plugin_data(registry: PluginRegistry | None, name: str, table: Any, path: str, on_error: str) -> dict[str, Any]:
    """A plugin table as its plugin's ``Config`` sees it (defaults filled in), plus its ``priority``."""
    if registry is not None:
        try:
            conf, priority = plugin_config(registry, name, table, path, on_error)
        except (ConfigError, SkipPlugin):
            pass
        else:
            data = plain(conf)
            if isinstance(data, dict):
                return {**data, "priority": priority}
    return all_secret(table) if isinstance(table, dict) else {"": all_secret(table)}


def _credential_keys(registry: PluginRegistry | None, plugin: str) -> frozenset[str] | None:
    info = registry.get(plugin) if registry is not None else None
    cls = info.cls if info is not None else None
    return cls.credential_secrets if cls is not None else None


def config_data(cfg: Config, registry: PluginRegistry | None = None) -> dict[str, Any]:
    """``cfg`` as plain data with each secret wrapped in a :class:`~triogate.masking.Secret`.

    Plugin tables are structured with the ``registry``'s plugins (so their marked fields are
    known); without a registry, or for a plugin it cannot load, every value of the table is
    treated as a secret. Consumers' credentials are masked as each plugin's
    ``credential_secrets`` says (all of them when it says nothing).
    """
    on_error = cfg.gateway.plugins_on_error
    routes = {}
    for rname, route in cfg.routes.items():
        data = plain(route)
        at = key_path(key_path("routes", rname), "plugins")
        data["plugins"] = {p: _plugin_data(registry, p, t, key_path(at, p), on_error) for p, t in route.plugins.items()}
        routes[rname] = data
    consumers = {}
    for cname, consumer in cfg.consumers.items():
        data = plain(consumer)
        data["credentials"] = {p: _credential(c, _credential_keys(registry, p)) for p, c in consumer.credentials.items()}
        consumers[cname] = data
    return {
        "gateway": plain(cfg.gateway),
        "admin": plain(cfg.admin),
        "upstreams": {name: plain(up) for name, up in cfg.upstreams.items()},
        "routes": routes,
        "plugins": {p: _plugin_data(registry, p, t, key_path("plugins", p), on_error) for p, t in cfg.plugins.items()},
        "consumers": consumers,
    }


def render_config(cfg: Config, registry: PluginRegistry | None = None) -> dict[str, Any]:
    """``cfg`` as JSON-able data with every secret masked (see :func:`config_data`)."""
    return masked(config_data(cfg, registry))


# --------------------------------------------------------------------------- changes


@attrs.frozen
class Change:
    """One difference. ``op``: ``+`` added, ``-`` removed, ``~`` changed.

    ``kind`` is what changed: ``gateway``, ``admin`` (settings), ``upstream``, ``target`` (of
    ``upstream``), ``route``, ``plugin`` (on ``route``; None: global) or ``consumer``, named
    ``name``. ``path`` is the setting's key path inside it, empty for the item itself. ``old``
    and ``new`` are plain data with secrets still wrapped; :meth:`to_json` masks them. For an
    added item, ``new`` holds the settings that differ from the defaults (a plugin: the keys written).
    """

    op: str
    kind: str
    name: str | None = None
    path: tuple[str | int, ...] = ()
    old: Any = None
    new: Any = None
    route: str | None = None
    upstream: str | None = None
    note: str | None = None

    @property
    def field(self) -> str | None:
        """``path`` as a TOML key path (``health_check.interval``, ``headers."x.y"``), None for the item."""
        if not self.path:
            return None
        out = ""
        for step in self.path:
            out = key_path(out, step)
        return out

    @property
    def secret(self) -> bool:
        return has_secret(self.old) or has_secret(self.new)

    def to_json(self) -> dict[str, Any]:
        """The change as JSON-able data, secrets masked; keys that do not apply are left out."""
        out: dict[str, Any] = {"op": self.op, "kind": self.kind}
        for key in ("name", "route", "upstream", "field"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.op != "+":
            out["old"] = masked(self.old)
        if self.op != "-":
            out["new"] = masked(self.new)
        if self.secret:
            out["secret"] = True
        if self.note:
            out["note"] = self.note
        out["text"] = format_change(self)
        return out


def _defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in attrs.fields(cls):
        d = f.default
        if d is attrs.NOTHING:
            continue
        if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
            d = d.factory()  # type: ignore[call-arg]
        out[f.name] = plain(d)
    return out


def _non_default(data: dict[str, Any], cls: type) -> dict[str, Any]:
    defaults = _defaults(cls)
    return {k: v for k, v in data.items() if k not in defaults or defaults[k] != v}


def _leaves(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, tuple[str | int, ...], Any, Any]]:
    """``(op, path, old, new)`` for each differing setting; tables are compared key by key, arrays of
    tables of one length item by item (``rules[1].weight``), the rest whole."""
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and any(isinstance(v, dict) for v in (*old, *new))):
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            yield from _leaves(o, n, (*path, i))
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            if key not in new:
                yield "-", (*path, key), old[key], None
            elif key not in old:
                yield "+", (*path, key), None, new[key]
            else:
                yield from _leaves(old[key], new[key], (*path, key))
    elif old != new:
        yield "~", path, old, new


def _setting_changes(kind: str, name: str | None, old: dict[str, Any], new: dict[str, Any], **where: Any) -> list[Change]:
    out = []
    for op, path, o, n in _leaves(old, new):
        note = _RESTART_NOTE if (kind, path[0]) in RESTART_ONLY else None
        out.append(Change(op, kind, name, path, o, n, note=note, **where))
    return out


def _target_key(target: dict[str, Any]) -> Any:
    url = target.get("url")
    return url.value if isinstance(url, Secret) else url


def _upstream_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    old_targets = {_target_key(t): t for t in old.get("targets", [])}
    new_targets = {_target_key(t): t for t in new.get("targets", [])}
    out = [Change("-", "target", _shown_url(t), old=t, upstream=name) for k, t in old_targets.items()
           if k not in new_targets]
    out += [Change("+", "target", _shown_url(t), new=t, upstream=name) for k, t in new_targets.items()
            if k not in old_targets]
    for k, t in old_targets.items():
        if k in new_targets:
            out += [Change(op, "target", _shown_url(t), path, o, n, upstream=name)
                    for op, path, o, n in _leaves(t, new_targets[k])]
    rest_old = {k: v for k, v in old.items() if k != "targets"}
    rest_new = {k: v for k, v in new.items() if k != "targets"}
    return out + _setting_changes("upstream", name, rest_old, rest_new)


def _shown_url(target: dict[str, Any]) -> str:
    return str(masked(target.get("url")))


def _plugin_changes(route: str | None, old: dict[str, Any], new: dict[str, Any],
                    written: dict[str, Any]) -> list[Change]:
    out = [Change("-", "plugin", p, old=old[p], route=route) for p in old if p not in new]
    for p, data in new.items():
        if p not in old:
            keys = written.get(p)
            shown = {k: v for k, v in data.items() if k in keys} if isinstance(keys, dict) else data
            out.append(Change("+", "plugin", p, new=shown, route=route))
    for p, data in old.items():
        if p in new:
            out += _setting_changes("plugin", p, data, new[p], route=route)
    return out


def _summary_route(data: dict[str, Any]) -> dict[str, Any]:
    shown = _non_default({k: v for k, v in data.items() if k != "plugins"}, RouteConfig)
    if data.get("plugins"):
        shown["plugins"] = list(data["plugins"])
    return shown


def _summary_upstream(data: dict[str, Any]) -> dict[str, Any]:
    shown = _non_default(data, UpstreamConfig)
    targets = data.get("targets") or []
    if targets and all(t.get("weight") == 1 for t in targets):
        shown["targets"] = [t["url"] for t in targets]
    return shown


def _summary_consumer(data: dict[str, Any]) -> dict[str, Any]:
    shown = _non_default({k: v for k, v in data.items() if k != "credentials"}, ConsumerConfig)
    if data.get("credentials"):
        shown["credentials"] = list(data["credentials"])  # which plugins, never the values
    return shown


def _keyed(kind: str, old: dict[str, Any], new: dict[str, Any], summary: Any, changed: Any) -> list[Change]:
    out = [Change("-", kind, n, old=summary(d)) for n, d in old.items() if n not in new]
    out += [Change("+", kind, n, new=summary(d)) for n, d in new.items() if n not in old]
    for n, d in old.items():
        if n in new:
            out += changed(n, d, new[n])
    return out


def _written_plugin_keys(cfg: Config) -> dict[str | None, dict[str, Any]]:
    """The keys each plugin table sets, by route (None: global): what an added plugin shows."""
    out: dict[str | None, dict[str, Any]] = {None: {p: dict.fromkeys(t) if isinstance(t, dict) else None
                                                    for p, t in cfg.plugins.items()}}
    for rname, route in cfg.routes.items():
        out[rname] = {p: dict.fromkeys(t) if isinstance(t, dict) else None for p, t in route.plugins.items()}
    return out


def diff_configs(old: Config, new: Config, registry: PluginRegistry | None = None) -> list[Change]:
    """Every difference from ``old`` to ``new``: settings, upstreams and targets, routes, global plugins,
    consumers. Empty when a reload would change nothing."""
    a, b = config_data(old, registry), config_data(new, registry)
    written = _written_plugin_keys(new)
    changes = _setting_changes("gateway", None, a["gateway"], b["gateway"])
    changes += _setting_changes("admin", None, a["admin"], b["admin"])
    changes += _keyed("upstream", a["upstreams"], b["upstreams"], _summary_upstream, _upstream_changes)

    def route_changes(name: str, o: dict[str, Any], n: dict[str, Any]) -> list[Change]:
        rest_o = {k: v for k, v in o.items() if k != "plugins"}
        rest_n = {k: v for k, v in n.items() if k != "plugins"}
        return (_setting_changes("route", name, rest_o, rest_n)
                + _plugin_changes(name, o["plugins"], n["plugins"], written.get(name, {})))

    changes += _keyed("route", a["routes"], b["routes"], _summary_route, route_changes)
    changes += _plugin_changes(None, a["plugins"], b["plugins"], written[None])
    changes += _keyed("consumer", a["consumers"], b["consumers"], _summary_consumer,
                      lambda name, o, n: _setting_changes("consumer", name, o, n))
    return changes


# --------------------------------------------------------------------------- text


def _show(value: Any) -> str:
    """A value the way gateway.toml writes it (JSON notation), secrets masked."""
    value = masked(value)
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key_path('', k)} = {_show(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str) and value.startswith("<secret ") and value.endswith(">"):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _summary(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return ""
    return " (" + ", ".join(f"{key_path('', k)} = {_show(v)}" for k, v in value.items()) + ")"


def _subject(c: Change) -> str:
    if c.kind in ("gateway", "admin"):
        return c.kind
    if c.kind == "target":
        return f'upstream "{c.upstream}"'
    if c.kind == "plugin":
        return f'plugin "{c.name}" on route "{c.route}"' if c.route is not None else f'global plugin "{c.name}"'
    return f'{c.kind} "{c.name}"'


def format_change(c: Change) -> str:
    """One change as one line of ``triogate diff``'s output."""
    note = f" ({c.note})" if c.note else ""
    if c.kind == "plugin" and c.route is not None and not c.path and c.op in "+-":
        what = f"+ {c.name}{_summary(c.new)}" if c.op == "+" else f"- {c.name}"
        return f'~ route "{c.route}": plugins: {what}'
    if c.kind == "target" and not c.path:
        return f"~ {_subject(c)}: targets: {c.op} {c.name}{_summary(_non_default_target(c.new))}"
    if not c.path:
        return f"{c.op} {_subject(c)}" + (_summary(c.new) if c.op == "+" else "")
    subject = _subject(c) + (f": target {c.name}" if c.kind == "target" else "")
    field = c.field
    if c.op == "+":
        return f"~ {subject}: {field}: added {_show(c.new)}{note}"
    if c.op == "-":
        return f"~ {subject}: {field}: removed (was {_show(c.old)}){note}"
    if c.secret:
        return f"~ {subject}: {field} changed: {_show(c.old)} → {_show(c.new)}{note}"
    return f"~ {subject}: {field}: {_show(c.old)} → {_show(c.new)}{note}"


def _non_default_target(target: Any) -> Any:
    if isinstance(target, dict) and target.get("weight", 1) != 1:
        return {"weight": target["weight"]}
    return None


def format_changes(changes: list[Change]) -> str:
    """The changes one per line (target additions and removals of one upstream on one line),
    or ``no changes``."""
    if not changes:
        return "no changes"
    lines: list[str] = []
    i = 0
    while i < len(changes):
        c = changes[i]
        if c.kind == "target" and not c.path:
            group = [c]
            while i + 1 < len(changes) and changes[i + 1].kind == "target" and not changes[i + 1].path \
                    and changes[i + 1].upstream == c.upstream:
                i += 1
                group.append(changes[i])
            parts = [f"{t.op} {t.name}{_summary(_non_default_target(t.new))}" for t in group]
            lines.append(f"~ {_subject(c)}: targets: " + "  ".join(parts))
        else:
            lines.append(format_change(c))
        i += 1
    return "\n".join(lines)

