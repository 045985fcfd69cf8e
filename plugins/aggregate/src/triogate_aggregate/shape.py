"""Shaping one backend's JSON (target, allow, deny, mapping, wrapping, group) and merging results.

Order per backend: ``target`` → ``allow`` → ``deny`` → ``mapping`` → wrapping of an
array (or scalar) → ``group``. Field rules apply to an object, or to each object of
an array. Results merge into the root in the order the backends are declared;
on a key conflict the later backend wins (``conflict = "last-wins"``) or the
earlier one keeps its value (``"first-wins"``). The merge is shallow.
"""

from __future__ import annotations

from typing import Any

import attrs
from triogate_transform_rules import NOTHING, get_field, pop_field, set_field

__all__ = ["Shape", "ShapeError", "merge"]


class ShapeError(Exception):
    """The backend's JSON does not have the shape the config expects."""


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


@attrs.frozen
class Shape:
    """The precomputed shaping rules of one backend."""

    name: str
    target: tuple[str, ...] | None
    allow: tuple[tuple[str, ...], ...]
    deny: tuple[tuple[str, ...], ...]
    mapping: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    collection: str | None
    group: str | None

    @classmethod
    def from_config(cls, name: str, b: Any) -> Shape:
        return cls(
            name=name,
            target=_split(b.target) if b.target else None,
            allow=tuple(_split(f) for f in b.allow),
            deny=tuple(_split(f) for f in b.deny),
            mapping=tuple((_split(s), _split(d)) for s, d in b.mapping.items()),
            collection=b.collection,
            group=b.group,
        )

    @property
    def has_field_rules(self) -> bool:
        return bool(self.allow or self.deny or self.mapping)

    def _fields(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.allow:
            kept: dict[str, Any] = {}
            for path in self.allow:
                value = get_field(obj, path)
                if value is not NOTHING:
                    set_field(kept, path, value)
            obj = kept
        for path in self.deny:
            pop_field(obj, path)
        for src, dst in self.mapping:
            value = pop_field(obj, src)
            if value is not NOTHING:
                set_field(obj, dst, value)
        return obj

    def apply(self, data: Any) -> dict[str, Any]:
        """This backend's contribution: a dict merged into the root."""
        if self.target is not None:
            if not isinstance(data, dict):
                raise ShapeError(f"target {'.'.join(self.target)!r}: the response is not an object")
            data = get_field(data, self.target)
            if data is NOTHING:
                raise ShapeError(f"target {'.'.join(self.target)!r}: no such field in the response")
        if self.has_field_rules:
            if isinstance(data, dict):
                data = self._fields(data)
            elif isinstance(data, list):
                data = [self._fields(x) if isinstance(x, dict) else x for x in data]
        if not isinstance(data, dict):
            # an array or scalar: wrapped under `collection`, else under the backend's
            # name, unless it goes under a group as it is
            if self.collection is not None:
                data = {self.collection: data}
            elif self.group is None:
                data = {self.name: data}
        if self.group is not None:
            return {self.group: data}
        return data


def merge(contributions: list[dict[str, Any]], conflict: str) -> tuple[dict[str, Any], list[str]]:
    """Shallow merge in declaration order; returns the document and the conflicting keys."""
    root: dict[str, Any] = {}
    conflicts: list[str] = []
    first_wins = conflict == "first-wins"
    for part in contributions:
        for k, v in part.items():
            if k in root:
                conflicts.append(k)
                if first_wins:
                    continue
            root[k] = v
    return root, conflicts
