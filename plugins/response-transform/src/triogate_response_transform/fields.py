"""JSON field rules on a parsed body: remove, rename, replace, add (dotted paths).

They apply to an object, or to each object of a top-level array. String values of
``replace``/``add`` are templates; other JSON values are used as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .template import Missing, Ref, Template, parse

__all__ = ["FieldRules", "compile_fields"]

Path = tuple[str, ...]
_NOTHING = object()


def _get(obj: Any, path: Path) -> Any:
    cur = obj
    for step in path:
        if not isinstance(cur, dict) or step not in cur:
            return _NOTHING
        cur = cur[step]
    return cur


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    cur = obj
    for step in path[:-1]:
        nxt = cur.get(step)
        if not isinstance(nxt, dict):
            nxt = cur[step] = {}
        cur = nxt
    cur[path[-1]] = value


def _pop(obj: Any, path: Path) -> Any:
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    if not isinstance(parent, dict) or path[-1] not in parent:
        return _NOTHING
    return parent.pop(path[-1])


def _value(v: Any, where: str) -> Any:
    """Compile a configured JSON value: strings become templates, containers are walked."""
    if isinstance(v, str):
        t = parse(v, where)
        return t if t.refs else t.parts[0]
    if isinstance(v, list):
        return [_value(x, where) for x in v]
    if isinstance(v, dict):
        return {k: _value(x, where) for k, x in v.items()}
    return v


def _render(v: Any, resolve: Callable[[Ref], str]) -> Any:
    if isinstance(v, Template):
        return v.render(resolve)
    if isinstance(v, list):
        return [_render(x, resolve) for x in v]
    if isinstance(v, dict):
        return {k: _render(x, resolve) for k, x in v.items()}
    return v


@attrs.frozen
class FieldRules:
    remove: tuple[Path, ...]
    rename: tuple[tuple[Path, Path], ...]
    replace: tuple[tuple[Path, Any], ...]
    add: tuple[tuple[Path, Any], ...]

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add)

    def apply(self, doc: Any, resolve: Callable[[Ref], str]) -> Any:
        if isinstance(doc, dict):
            self._apply(doc, resolve)
        elif isinstance(doc, list):
            for item in doc:
                if isinstance(item, dict):
                    self._apply(item, resolve)
        return doc

    def _apply(self, obj: dict[str, Any], resolve: Callable[[Ref], str]) -> None:
        for path in self.remove:
            _pop(obj, path)
        for src, dst in self.rename:
            value = _pop(obj, src)
            if value is not _NOTHING:
                _set(obj, dst, value)
        for path, value in self.replace:
            if _get(obj, path) is _NOTHING:
                continue
            try:
                _set(obj, path, _render(value, resolve))
            except Missing:
                _pop(obj, path)  # a replacement that cannot be made never leaves the old value
        for path, value in self.add:
            if _get(obj, path) is not _NOTHING:
                continue
            try:
                _set(obj, path, _render(value, resolve))
            except Missing:
                continue


def _path(text: str, where: str) -> Path:
    parts = tuple(text.split("."))
    if not text or any(not p or p != p.strip() for p in parts):
        raise ValueError(f"{where}: expected a (dotted) field name, got {text!r}")
    return parts


def compile_fields(remove: list[str], rename: dict[str, str], replace: dict[str, Any], add: dict[str, Any],
                   where: str) -> FieldRules:
    return FieldRules(
        remove=tuple(_path(p, f"remove.{where}") for p in remove),
        rename=tuple((_path(s, f"rename.{where}"), _path(d, f"rename.{where}")) for s, d in rename.items()),
        replace=tuple((_path(p, f"replace.{where}"), _value(v, f"replace.{where}.{p}")) for p, v in replace.items()),
        add=tuple((_path(p, f"add.{where}"), _value(v, f"add.{where}.{p}")) for p, v in add.items()),
    )
