"""Query parameter rules on the raw query string.

Parameters no rule touches keep their exact encoding; new values are percent-encoded
as one value (``&``, ``=``, ``#``, ``+`` included), names as configured.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_plus

import attrs
from triogate.template import Missing, Ref, Template, parse
from triogate.template import encode_query_value as _enc

__all__ = ["QueryRules", "compile_query"]


@attrs.frozen
class QueryRules:
    remove: frozenset[str]
    rename: tuple[tuple[str, str], ...]
    replace: tuple[tuple[str, Template], ...]
    add: tuple[tuple[str, Template], ...]
    append: tuple[tuple[str, Template], ...]
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "refs", tuple(r for _, t in (*self.replace, *self.add, *self.append) for r in t.refs))

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    def apply(self, query: str, resolve: Callable[[Ref], str]) -> str:
        # (decoded name, raw "name=value" item)
        items = [(unquote_plus(i.partition("=")[0]), i) for i in query.split("&") if i]
        if self.remove:
            items = [it for it in items if it[0] not in self.remove]
        for old, new in self.rename:
            items = [(new, _enc(new) + raw[len(raw.partition("=")[0]):]) if name == old else (name, raw)
                     for name, raw in items]
        for name, t in self.replace:
            if any(n == name for n, _ in items):
                at = next(i for i, (n, _) in enumerate(items) if n == name)
                items = [it for it in items if it[0] != name]
                try:
                    items.insert(at, (name, f"{_enc(name)}={_enc(t.render(resolve))}"))
                except Missing:
                    pass  # never leave the value that was meant to be replaced
        for name, t in self.add:
            if not any(n == name for n, _ in items):
                try:
                    items.append((name, f"{_enc(name)}={_enc(t.render(resolve))}"))
                except Missing:
                    pass
        for name, t in self.append:
            try:
                items.append((name, f"{_enc(name)}={_enc(t.render(resolve))}"))
            except Missing:
                pass
        return "&".join(raw for _, raw in items)


def _name(n: str, where: str) -> str:
    if not n or any(c in n for c in "&=#"):
        raise ValueError(f"{where}: invalid query parameter name {n!r}")
    return n


def compile_query(remove: list[str], rename: dict[str, str], replace: dict[str, str], add: dict[str, str],
                  append: dict[str, str]) -> QueryRules:
    def tmpl(op: str, items: dict[str, str]) -> tuple[tuple[str, Template], ...]:
        return tuple((_name(n, f"{op}.query"), parse(v, f"{op}.query.{n}")) for n, v in items.items())

    return QueryRules(
        remove=frozenset(_name(n, "remove.query") for n in remove),
        rename=tuple((_name(a, "rename.query"), _name(b, "rename.query")) for a, b in rename.items()),
        replace=tmpl("replace", replace),
        add=tmpl("add", add),
        append=tmpl("append", append),
    )
