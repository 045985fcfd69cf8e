"""JSON field rules on a parsed body: remove, rename, replace, add (dotted paths), and the path helpers.

Rules apply to an object, or to each object of a top-level array, in the order remove →
rename → replace → add. String values of ``replace``/``add`` are ``triogate.template``
templates (rendered raw: the body is JSON-encoded afterwards); other JSON values are used
as they are. A ``replace`` whose template has no value removes the field (the old value is
never left in place); an ``add`` without a value adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from triogate.template import Missing, Ref, Template, parse

__all__ = ["NOTHING", "FieldPath", "FieldRules", "compile_fields", "get_field", "pop_field", "set_field",
           "split_path"]

FieldPath = tuple[str, ...]


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


#: what ``get_field``/``pop_field`` return for an absent field (``None`` is JSON null)
NOTHING: Any = _Nothing()


def split_path(text: str, where: str) -> FieldPath:
    """``"a.b"`` → ``("a", "b")``; ``ValueError`` for an empty name or one with outer spaces."""
    parts = tuple(text.split("."))
    if not text or any(not p or p != p.strip() for p in parts):
        raise ValueError(f"{where}: expected a (dotted) field name, got {text!r}")
    return parts


def get_field(obj: Any, path: FieldPath) -> Any:
    """The value at a dotted path through objects, or ``NOTHING``."""
    cur = obj
    for step in path:
        if not isinstance(cur, dict) or step not in cur:
            return NOTHING
        cur = cur[step]
    return cur


def set_field(obj: dict[str, Any], path: FieldPath, value: Any) -> None:
    """Set a dotted path, creating (or replacing non-object) intermediate objects."""
    cur = obj
    for step in path[:-1]:
        nxt = cur.get(step)
        if not isinstance(nxt, dict):
            nxt = cur[step] = {}
        cur = nxt
    cur[path[-1]] = value


def pop_field(obj: Any, path: FieldPath) -> Any:
    """Remove a dotted path and return its value, or ``NOTHING`` when absent."""
    parent = get_field(obj, path[:-1]) if len(path) > 1 else obj
    if not isinstance(parent, dict) or path[-1] not in parent:
        return NOTHING
    return parent.pop(path[-1])


def _compile(v: Any, where: str) -> Any:
    """A configured JSON value: strings become templates (or stay text), containers are walked."""
    if isinstance(v, str):
        t = parse(v, where)
        return t if t.refs else t.literal
    if isinstance(v, list):
        return [_compile(x, where) for x in v]
    if isinstance(v, dict):
        return {k: _compile(x, where) for k, x in v.items()}
    return v


def _render(v: Any, resolve: Callable[[Ref], str]) -> Any:
    if isinstance(v, Template):
        return v.render(resolve)
    if isinstance(v, list):
        return [_render(x, resolve) for x in v]
    if isinstance(v, dict):
        return {k: _render(x, resolve) for k, x in v.items()}
    return v


def _refs(v: Any, out: list[Ref]) -> None:
    if isinstance(v, Template):
        out.extend(v.refs)
    elif isinstance(v, list):
        for x in v:
            _refs(x, out)
    elif isinstance(v, dict):
        for x in v.values():
            _refs(x, out)


@attrs.frozen
class FieldRules:
    """Compiled field rules; ``refs`` lists every template reference (to check against the route)."""

    remove: tuple[FieldPath, ...]
    rename: tuple[tuple[FieldPath, FieldPath], ...]
    replace: tuple[tuple[FieldPath, Any], ...]
    add: tuple[tuple[FieldPath, Any], ...]
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        refs: list[Ref] = []
        for _, v in (*self.replace, *self.add):
            _refs(v, refs)
        object.__setattr__(self, "refs", tuple(refs))

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add)

    def apply(self, doc: Any, resolve: Callable[[Ref], str]) -> Any:
        """Edit ``doc`` in place (an object, or each object of an array) and return it."""
        if isinstance(doc, dict):
            self._apply(doc, resolve)
        elif isinstance(doc, list):
            for item in doc:
                if isinstance(item, dict):
                    self._apply(item, resolve)
        return doc

    def _apply(self, obj: dict[str, Any], resolve: Callable[[Ref], str]) -> None:
        for path in self.remove:
            pop_field(obj, path)
        for src, dst in self.rename:
            value = pop_field(obj, src)
            if value is not NOTHING:
                set_field(obj, dst, value)
        for path, value in self.replace:
            if get_field(obj, path) is NOTHING:
                continue
            try:
                set_field(obj, path, _render(value, resolve))
            except Missing:
                pop_field(obj, path)  # a replacement that cannot be made never leaves the old value
        for path, value in self.add:
            if get_field(obj, path) is not NOTHING:
                continue
            try:
                set_field(obj, path, _render(value, resolve))
            except Missing:
                continue


def compile_fields(remove: list[str], rename: dict[str, str], replace: dict[str, Any], add: dict[str, Any],
                   where: str = "body") -> FieldRules:
    """Compile the rules of one config; errors name ``<op>.<where>`` (``remove.body``, ``add.body.a.b``)."""
    return FieldRules(
        remove=tuple(split_path(p, f"remove.{where}") for p in remove),
        rename=tuple((split_path(s, f"rename.{where}"), split_path(d, f"rename.{where}")) for s, d in rename.items()),
        replace=tuple((split_path(p, f"replace.{where}"), _compile(v, f"replace.{where}.{p}"))
                      for p, v in replace.items()),
        add=tuple((split_path(p, f"add.{where}"), _compile(v, f"add.{where}.{p}")) for p, v in add.items()),
    )
