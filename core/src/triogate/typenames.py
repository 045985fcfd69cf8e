"""How config types and defaults are shown to people: docs tables, `triogate plugins -v`, the admin API.

One spelling everywhere: ``"memory" | "redis"``, ``list of string``, ``integer (optional)``,
never a Python repr such as ``Literal['memory', 'redis']`` or ``<class '...RedisConfig'>``.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import attrs

__all__ = ["json_default", "type_name"]


def type_name(tp: Any, sep: str = " | ") -> str:
    """A field type as the docs write it; ``sep`` joins alternatives (Markdown tables escape the bar)."""
    if tp is Any:
        return "any"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return sep.join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return sep.join(type_name(a, sep) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0], sep)}" if args else "list"
    if origin is dict:
        return f"table of {type_name(args[1], sep)}" if args else "table"
    if attrs.has(tp):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, getattr(tp, "__name__", str(tp)))


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for config defaults: a nested settings object is a table."""
    if attrs.has(type(o)):
        address = getattr(o, "address", None)  # a listener: shown the way it is usually written
        if isinstance(address, str) and all(getattr(o, f.name) == f.default for f in attrs.fields(type(o))
                                            if f.name != "address"):
            return address
        return attrs.asdict(o)
    return str(o)
