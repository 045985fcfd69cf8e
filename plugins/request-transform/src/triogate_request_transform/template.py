"""Templated values: ``"{principal.sub}"``, ``"/v2/users/{id}"``, parsed once at config load.

References:

- ``{name}``: a route path parameter (percent-decoded);
- ``{query.name}``: the first value of a query parameter of the client request;
- ``{header.name}``: a header of the client request (as received);
- ``{principal.consumer}``, ``{principal.id}``, ``{principal.<claim>}`` (dotted for nested claims).

``{{`` and ``}}`` are literal braces. In a path template a value becomes exactly one
path segment (percent-encoded; empty values and dot-segments refused), and
``{rest}`` as the last segment is the remainder of the path after the route's prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

import attrs
from triogate import Context

__all__ = ["Missing", "PathTemplate", "Ref", "Resolver", "Template", "parse", "parse_path"]

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_REF_RE = re.compile(rf"(?:(query|header|principal)\.)?({_NAME}(?:\.[A-Za-z0-9_\-]+)*)")
_PCHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%]*")


class Missing(Exception):
    """A reference has no usable value for this request."""

    def __init__(self, ref: Ref, why: str = "no value") -> None:
        super().__init__(f"{{{ref.text}}}: {why}")
        self.ref = ref


@attrs.frozen
class Ref:
    ns: str  # "param", "query", "header" or "principal"
    path: tuple[str, ...]
    text: str


@attrs.frozen
class Template:
    parts: tuple[str | Ref, ...]
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)  # computed once

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "refs", tuple(p for p in self.parts if isinstance(p, Ref)))

    def render(self, resolve: Callable[[Ref], str], encode: Callable[[str], str] = str) -> str:
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        return "".join(p if isinstance(p, str) else encode(resolve(p)) for p in self.parts)


def parse(text: str, where: str) -> Template:
    """Parse a template; raises ValueError naming ``where`` on a malformed one."""
    parts: list[str | Ref] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "{":
            if text.startswith("{{", i):
                buf.append("{")
                i += 2
                continue
            end = text.find("}", i)
            if end < 0:
                raise ValueError(f"{where}: unclosed {{ in {text!r}")
            body = text[i + 1:end]
            m = _REF_RE.fullmatch(body)
            if m is None:
                raise ValueError(f"{where}: invalid reference {{{body}}} in {text!r}")
            ns, key = m.group(1), m.group(2)
            path = tuple(key.split("."))
            if ns is None:
                if len(path) != 1:
                    raise ValueError(f"{where}: unknown reference {{{body}}} (expected {{<route param>}},"
                                     " {query.<name>}, {header.<name>} or {principal.<claim>})")
                ns = "param"
            elif ns in ("query", "header") and len(path) != 1:
                raise ValueError(f"{where}: {{{body}}}: expected {{{ns}.<name>}}")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(Ref(ns, path, body))
            i = end + 1
            continue
        if c == "}":
            if text.startswith("}}", i):
                buf.append("}")
                i += 2
                continue
            raise ValueError(f"{where}: unmatched }} in {text!r} (write }}}} for a literal brace)")
        buf.append(c)
        i += 1
    if buf or not parts:
        parts.append("".join(buf))
    return Template(tuple(parts))


def _dot_piece(value: str) -> bool:
    """True when a value holds a dot-segment between (back)slashes or before a ';'.

    The value is sent percent-encoded, but many servers decode ``%2F`` (or cut at
    ``;``) before resolving dot-segments, so ``../admin`` could still climb there.
    """
    return any(p.split(";", 1)[0] in (".", "..") for p in re.split(r"[/\\]", value))


@attrs.frozen
class PathTemplate:
    """A path template: each segment rendered on its own; ``{rest}`` may end it."""

    segments: tuple[Template, ...]
    rest: bool  # the last segment is {rest}

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(r for s in self.segments for r in s.refs)

    def render(self, resolve: Callable[[Ref], str], rest: str) -> str:
        def checked(ref: Ref) -> str:
            value = resolve(ref)
            if "." in value and _dot_piece(value):
                raise Missing(ref, "a path value cannot hold a dot-segment (. or ..)")
            return value

        segs = []
        for seg in self.segments:
            if not seg.refs:
                segs.append(seg.parts[0])
                continue
            value = seg.render(checked, lambda v: quote(v, safe=""))
            if value == "":
                raise Missing(seg.refs[0], "a path segment cannot be empty")
            segs.append(value)
        path = "/" + "/".join(segs)  # type: ignore[arg-type]
        if self.rest:
            path = path.rstrip("/") + "/" + rest.lstrip("/")
        return path


def parse_path(text: str, where: str, params: set[str] | None) -> PathTemplate:
    if not text.startswith("/") or "?" in text or "#" in text:
        raise ValueError(f"{where}: expected a path starting with / (no query or fragment), got {text!r}")
    raw = text[1:].split("/")
    rest = raw[-1] == "{rest}" and (params is None or "rest" not in params)
    if rest:
        raw = raw[:-1]
    segments = []
    for seg in raw:
        t = parse(seg, where)
        for p in t.parts:
            if isinstance(p, str) and (_PCHAR.fullmatch(p) is None or p in (".", "..")):
                raise ValueError(f"{where}: invalid path segment {seg!r} in {text!r}")
            if isinstance(p, Ref) and p.ns == "param" and p.path[0] == "rest" and not (params and "rest" in params):
                raise ValueError(f"{where}: {{rest}} can only be the whole last segment")
        segments.append(t)
    return PathTemplate(tuple(segments), rest)


def scalar(value: Any) -> str | None:
    """The text of a JSON scalar; None for null, objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return None


class Resolver:
    """Values of references for one request (the headers as they were received)."""

    __slots__ = ("_query", "ctx", "headers")

    def __init__(self, ctx: Context, snapshot_headers: bool = False) -> None:
        self.ctx = ctx
        # header rules run last; a snapshot lets {header.x} see the headers as received
        self.headers = ctx.request.headers.copy() if snapshot_headers else ctx.request.headers
        self._query: dict[str, list[str]] | None = None

    def __call__(self, ref: Ref) -> str:
        ctx = self.ctx
        ns = ref.ns
        value: Any = None
        if ns == "param":
            raw = ctx.params.get(ref.path[0])
            value = unquote(raw) if raw is not None else None
        elif ns == "query":
            if self._query is None:
                self._query = ctx.request.query_params()
            values = self._query.get(ref.path[0])
            value = values[0] if values else None
        elif ns == "header":
            value = self.headers.get(ref.path[0])
        else:
            p = ctx.principal
            if p is None or p.anonymous:
                raise Missing(ref, "no authenticated principal")
            if ref.path == ("consumer",):
                value = p.consumer
            elif ref.path == ("id",):
                value = p.id
            else:
                cur: Any = p.claims
                for step in ref.path:
                    cur = cur.get(step) if isinstance(cur, dict) else None
                value = cur
        text = scalar(value)
        if text is None:
            raise Missing(ref, "no value" if value is None else "not a string, number or boolean")
        return text
