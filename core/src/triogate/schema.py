"""JSON Schema of gateway.toml, including each installed plugin's config (``triogate schema``)."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import attrs

from . import fields
from .config import LISTEN_ADDRESS_PATTERN, Config, ListenerConfig
from .plugins import PluginRegistry

__all__ = ["config_schema", "type_schema"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"},
    Any: {},
}


def type_schema(tp: Any) -> dict[str, Any]:
    """JSON Schema for one attrs field type."""
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return type_schema(options[0])
        return {"anyOf": [type_schema(a) for a in options]}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1]) if args else {}}
    if tp is ListenerConfig:
        return {"anyOf": [{"type": "string", "description": "host:port", "pattern": LISTEN_ADDRESS_PATTERN},
                          attrs_schema(ListenerConfig)]}
    if attrs.has(tp):
        return attrs_schema(tp)
    return {}


def attrs_schema(cls: type) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):
        if f.metadata.get("internal"):
            continue
        s = type_schema(hints.get(f.name, f.type))
        _add_checks(s, *fields.schema_of(f.validator))
        _add_checks(s, *_declared(f.metadata.get("schema")))
        if f.metadata.get("description"):
            s["description"] = f.metadata["description"]
        if f.metadata.get("secret"):
            s["writeOnly"] = True  # JSON Schema's word for a value that is never shown back
        if f.default is attrs.NOTHING:
            required.append(f.name)
        elif not isinstance(f.default, attrs.Factory) and f.default is not None:  # type: ignore[arg-type]
            s["default"] = f.default
        props[f.name] = s
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        out["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        out["required"] = required
    return out


def _declared(fragment: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``setting(metadata={"schema": ...})`` fragment, split like :func:`triogate.fields.schema_of`."""
    if not fragment:
        return {}, {}
    value = dict(fragment)
    return value, value.pop("items", None) or {}


def _add_checks(s: dict[str, Any], value: dict[str, Any], items: dict[str, Any]) -> None:
    """Merge what a field's checks amount to (patterns, bounds) into its type's schema, so the
    schema rejects what ``triogate check`` rejects wherever JSON Schema can say it."""
    for option in s.get("anyOf", [s]):
        if value and option.get("type") not in ("array", "object"):
            option.update(value)
        if items and option.get("type") == "array":
            option["items"] = {**option.get("items", {}), **items}
        elif items and option.get("type") == "object":
            option["additionalProperties"] = {**(option.get("additionalProperties") or {}), **items}


def config_schema(registry: PluginRegistry) -> dict[str, Any]:
    schema = attrs_schema(Config)
    plugin_props = {}
    for name in registry.available:
        info = registry.get(name)
        assert info is not None and info.cls is not None
        ps = attrs_schema(info.cls.Config)
        ps["properties"]["priority"] = {"type": "integer", "description": "override this plugin's priority"}
        ps["description"] = (info.cls.__doc__ or name).strip().splitlines()[0]
        plugin_props[name] = ps
    plugins = {"type": "object", "properties": plugin_props, "additionalProperties": False}
    schema["properties"]["plugins"] = {**plugins, "description": "global plugin instances"}
    route = schema["properties"]["routes"]["additionalProperties"]
    route["properties"]["plugins"] = {**plugins, "description": "plugin instances for this route"}
    credentials = schema["properties"]["consumers"]["additionalProperties"]["properties"]["credentials"]
    credentials["properties"] = {name: {"description": f"this consumer's {name} credentials"}
                                 for name in registry.available}
    credentials["additionalProperties"] = False
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "triogate gateway.toml"
    return schema
