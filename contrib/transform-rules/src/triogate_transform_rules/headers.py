"""Header rules: remove, rename, replace (only if present), add (only if absent), append (always).

Values are ``triogate.template`` header templates: a value that would carry CR, LF, NUL or
a non-Latin-1 character is never sent. A ``replace`` without a value removes the header (the
old value is never left in place); ``add``/``append`` without a value add nothing. Framing
and hop-by-hop fields (``MANAGED_HEADERS``) belong to the gateway and cannot be edited.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from triogate import Headers, fields
from triogate.template import Missing, Ref, Template, parse_header

__all__ = [
    "MANAGED_HEADERS", "HeaderRules", "check_header_name", "compile_headers", "header_name_problem", "is_token",
]

#: framing and hop-by-hop fields: the gateway sets them, no rule (or backend call) may
MANAGED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
                             "upgrade", "trailer", "proxy-connection", "expect"})


def is_token(name: str) -> bool:
    """True for a valid header field name (an RFC 9110 token)."""
    return fields.is_header_name(name)


def header_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be edited by a rule (invalid, or managed by the gateway), or None."""
    if not is_token(name):
        return f"invalid header name {name!r}"
    if name.lower() in MANAGED_HEADERS:
        return f"{name!r} is managed by the gateway and cannot be transformed"
    return None


def check_header_name(name: str, where: str) -> str:
    """The lower-cased name; ``ValueError`` for an invalid or gateway-managed one."""
    if (problem := header_name_problem(name)) is not None:
        raise ValueError(f"{where}: {problem}")
    return name.lower()


@attrs.frozen
class HeaderRules:
    """Compiled header rules; ``refs`` lists every template reference (to check against the route)."""

    remove: tuple[str, ...]
    rename: tuple[tuple[str, str], ...]
    replace: tuple[tuple[str, Template], ...]
    add: tuple[tuple[str, Template], ...]
    append: tuple[tuple[str, Template], ...]
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "refs", tuple(r for _, t in (*self.replace, *self.add, *self.append) for r in t.refs))

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    def apply(self, headers: Headers, resolve: Callable[[Ref], str]) -> None:
        """Edit ``headers`` in place."""
        if self.remove:
            headers.remove(*self.remove)
        for old, new in self.rename:
            values = [v for n, v in headers.raw if n == old.encode()]
            if values:
                headers.remove(old, new)
                for v in values:
                    headers.add(new, v)
        for name, t in self.replace:
            if name in headers:
                try:
                    headers.set(name, t.render_header(resolve))
                except Missing:
                    headers.remove(name)  # never leave the value that was meant to be replaced
        for name, t in self.add:
            if name not in headers:
                try:
                    headers.add(name, t.render_header(resolve))
                except Missing:
                    pass
        for name, t in self.append:
            try:
                headers.add(name, t.render_header(resolve))
            except Missing:
                pass


def compile_headers(remove: list[str], rename: dict[str, str], replace: dict[str, str], add: dict[str, str],
                    append: dict[str, str], where: str = "headers") -> HeaderRules:
    """Compile the rules of one config; errors name ``<op>.<where>`` (``add.headers.x-user``)."""

    def tmpl(op: str, items: dict[str, str]) -> tuple[tuple[str, Template], ...]:
        return tuple((check_header_name(n, f"{op}.{where}"), parse_header(v, f"{op}.{where}.{n}"))
                     for n, v in items.items())

    return HeaderRules(
        remove=tuple(check_header_name(n, f"remove.{where}") for n in remove),
        rename=tuple((check_header_name(a, f"rename.{where}"), check_header_name(b, f"rename.{where}"))
                     for a, b in rename.items()),
        replace=tmpl("replace", replace),
        add=tmpl("add", add),
        append=tmpl("append", append),
    )
