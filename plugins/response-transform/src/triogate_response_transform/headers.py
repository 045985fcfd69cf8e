"""Header rules: remove, rename, replace (only if present), add (only if absent), append (always)."""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs
from triogate import Headers

from .template import Missing, Ref, Template, parse

__all__ = ["HeaderRules", "check_header_name", "compile_headers"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# framing and hop-by-hop fields belong to the gateway, not to a rule
FORBIDDEN = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade",
                       "trailer", "proxy-connection", "expect"})


def check_header_name(name: str, where: str) -> str:
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"{where}: invalid header name {name!r}")
    if name.lower() in FORBIDDEN:
        raise ValueError(f"{where}: {name!r} is managed by the gateway and cannot be transformed")
    return name.lower()


def _header_value(t: Template, resolve: Callable[[Ref], str]) -> bytes:
    value = t.render(resolve)
    if any(c in value for c in "\r\n\x00"):
        raise Missing(t.refs[0], "not a valid header value")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise Missing(t.refs[0], "not a valid header value") from None


@attrs.frozen
class HeaderRules:
    remove: tuple[str, ...]
    rename: tuple[tuple[str, str], ...]
    replace: tuple[tuple[str, Template], ...]
    add: tuple[tuple[str, Template], ...]
    append: tuple[tuple[str, Template], ...]

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    def apply(self, headers: Headers, resolve: Callable[[Ref], str]) -> None:
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
                    headers.set(name, _header_value(t, resolve))
                except Missing:
                    headers.remove(name)  # never leave the value that was meant to be replaced
        for name, t in self.add:
            if name not in headers:
                try:
                    headers.add(name, _header_value(t, resolve))
                except Missing:
                    pass
        for name, t in self.append:
            try:
                headers.add(name, _header_value(t, resolve))
            except Missing:
                pass


def compile_headers(remove: list[str], rename: dict[str, str], replace: dict[str, str], add: dict[str, str],
                    append: dict[str, str], where: str = "headers") -> HeaderRules:
    def tmpl(op: str, items: dict[str, str]) -> tuple[tuple[str, Template], ...]:
        return tuple((check_header_name(n, f"{op}.{where}"), parse(v, f"{op}.{where}.{n}")) for n, v in items.items())

    return HeaderRules(
        remove=tuple(check_header_name(n, f"remove.{where}") for n in remove),
        rename=tuple((check_header_name(a, f"rename.{where}"), check_header_name(b, f"rename.{where}"))
                     for a, b in rename.items()),
        replace=tmpl("replace", replace),
        add=tmpl("add", add),
        append=tmpl("append", append),
    )
