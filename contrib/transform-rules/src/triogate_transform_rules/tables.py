"""The rule tables of the transform plugins' configs: remove, rename, replace/add (``SetRules``), append.

request-transform and response-transform are configured the same way on headers and JSON body
fields (request-transform adds query parameters by subclassing these tables). Header names are
checked when the config loads, each reported at its key path: an RFC 9110 token that is not
a gateway-managed field (``MANAGED_HEADERS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
from triogate import fields, setting

from .headers import header_name_problem

__all__ = ["AppendRules", "RemoveRules", "RenameRules", "SetRules", "has_rules"]


def _header_names(inst: Any, name: str, value: list[str] | dict[str, str]) -> Iterator[tuple[str, str]]:
    """Each name of a list, or each key of a table, is a header a rule may edit."""
    for i, header in enumerate(value):
        if (problem := header_name_problem(header)) is not None:
            yield fields.key_path(name, header if isinstance(value, dict) else i), problem


def _renamed_headers(inst: Any, name: str, value: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Both sides of ``{ old = "new" }`` are headers a rule may edit."""
    for old, new in value.items():
        for header in (old, new):
            if (problem := header_name_problem(header)) is not None:
                yield fields.key_path(name, old), problem


header_names = fields.Check(_header_names)


@attrs.define(frozen=True)
class RemoveRules:
    headers: list[str] = setting(factory=list, description="header names to drop", validator=header_names)
    body: list[str] = setting(factory=list, description="JSON body fields to drop (dotted paths)")


@attrs.define(frozen=True)
class RenameRules:
    headers: dict[str, str] = setting(
        factory=dict, description='{ old-name = "new-name" } for headers', validator=fields.Check(_renamed_headers))
    body: dict[str, str] = setting(factory=dict, description='{ "old.path" = "new.path" } for JSON body fields')


@attrs.define(frozen=True)
class SetRules:
    headers: dict[str, str] = setting(factory=dict, description="header name = value template", validator=header_names)
    body: dict[str, Any] = setting(
        factory=dict, description="JSON body field (dotted path) = JSON value (strings are templates)")


@attrs.define(frozen=True)
class AppendRules:
    headers: dict[str, str] = setting(
        factory=dict, description="header name = value template, added even when present", validator=header_names)


def has_rules(*tables: Any) -> bool:
    """True when any of these rule tables holds a rule."""
    return any(getattr(t, f.name) for t in tables for f in attrs.fields(type(t)))
