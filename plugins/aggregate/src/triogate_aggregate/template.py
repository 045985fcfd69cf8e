"""Templates for backend requests: ``/users/{id}``, ``/orders?user={principal.sub}``.

A template is parsed once at config load into literal text and references. Every
value is encoded for the exact place it goes: a path value becomes ONE path
segment (``/``, ``?``, ``#``, ``%`` percent-encoded; a segment that would read
``.``, ``..`` or nothing is refused), a query value one query value, a header
value one header value (no CR, LF or NUL). So no value can change which backend
URL is called.

References:

- ``{name}``: a route path parameter (percent-decoded first, then re-encoded);
- ``{query.name}``: the first value of a query parameter of the client request;
- ``{header.name}``: a request header of the client;
- ``{principal.consumer}``, ``{principal.id}``, ``{principal.<claim>}`` (dotted for nested claims);
- ``{resp.<backend>.<field>}``: a field of an earlier backend's JSON response (dotted;
  numbers index arrays); the backend then runs after that one.

``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs

__all__ = ["Missing", "PathTemplate", "Ref", "Template", "lookup", "parse", "parse_path"]

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_REF_RE = re.compile(rf"(?:(query|header|principal|resp)\.)?({_NAME}(?:\.[A-Za-z0-9_\-]+)*)")
_PCHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_QCHAR = re.compile(r"[A-Za-z0-9\-._~!$'()*+,;:@/%]*")


class Missing(Exception):
    """A reference has no usable value for this request."""

    def __init__(self, ref: Ref, why: str = "no value") -> None:
        super().__init__(f"{{{ref.text}}}: {why}")
        self.ref = ref
        self.why = why


@attrs.frozen
class Ref:
    """One ``{...}`` reference: its namespace and key path."""

    ns: str  # "param", "query", "header", "principal" or "resp"
    path: tuple[str, ...]
    text: str

    @property
    def from_request(self) -> bool:
        """True when the value comes from the client request (not from another backend)."""
        return self.ns != "resp"


@attrs.frozen
class Template:
    parts: tuple[str | Ref, ...]
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)  # computed once

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "refs", tuple(p for p in self.parts if isinstance(p, Ref)))

    def render(self, resolve: Callable[[Ref], str], encode: Callable[[str], str]) -> str:
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        out = []
        for p in self.parts:
            out.append(p if isinstance(p, str) else encode(resolve(p)))
        return "".join(out)


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
                                     " {query.<name>}, {header.<name>}, {principal.<claim>} or {resp.<backend>.<field>})")
                ns = "param"
            elif ns in ("query", "header") and len(path) != 1:
                raise ValueError(f"{where}: {{{body}}}: expected {{{ns}.<name>}}")
            elif ns == "resp" and len(path) < 2:
                raise ValueError(f"{where}: {{{body}}}: expected {{resp.<backend>.<field>}}")
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


@attrs.frozen
class PathTemplate:
    """A request target template: path segments plus query pairs, each rendered on its own."""

    segments: tuple[Template, ...]
    query: tuple[tuple[str, Template], ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        out: list[Ref] = []
        for s in self.segments:
            out.extend(s.refs)
        for _, v in self.query:
            out.extend(v.refs)
        return tuple(out)

    def render(self, resolve: Callable[[Ref], str]) -> str:
        def checked(ref: Ref) -> str:
            value = resolve(ref)
            if "." in value and _dot_piece(value):
                raise Missing(ref, "a path value cannot hold a dot-segment (. or ..)")
            return value

        segs = []
        for seg in self.segments:
            if not seg.refs:
                segs.append(seg.parts[0])  # type: ignore[arg-type]
                continue
            value = seg.render(checked, _segment)
            if value == "":
                raise Missing(seg.refs[0], "a path segment cannot be empty")
            segs.append(value)
        target = "/" + "/".join(segs)
        if self.query:
            target += "?" + "&".join(k + "=" + v.render(resolve, _query_value) for k, v in self.query)
        return target


def _dot_piece(value: str) -> bool:
    """True when a value holds a dot-segment between (back)slashes or before a ';'.

    The value is sent percent-encoded, but many servers decode ``%2F`` (or cut at
    ``;``) before resolving dot-segments, so ``../admin`` could still climb there.
    """
    return any(p.split(";", 1)[0] in (".", "..") for p in re.split(r"[/\\]", value))


def _segment(value: str) -> str:
    return quote(value, safe="")


def _query_value(value: str) -> str:
    return quote(value, safe="")


def parse_path(text: str, where: str) -> PathTemplate:
    """Parse ``/path/{x}?a={y}&b=literal`` (no fragment)."""
    if not text.startswith("/"):
        raise ValueError(f"{where}: expected a path starting with /, got {text!r}")
    path, _, query = text.partition("?")
    if "#" in text:
        raise ValueError(f"{where}: a backend path has no fragment (#): {text!r}")
    segments = []
    for seg in path[1:].split("/"):
        t = parse(seg, where)
        for p in t.parts:
            if isinstance(p, str) and (_PCHAR.fullmatch(p) is None or p in (".", "..")):
                raise ValueError(f"{where}: invalid path segment {seg!r} in {text!r}")
        segments.append(t)
    pairs = []
    if query:
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            if not key or _QCHAR.fullmatch(key) is None:
                raise ValueError(f"{where}: invalid query parameter name {key!r} in {text!r}")
            t = parse(value, where) if eq else Template(("",))
            for p in t.parts:
                if isinstance(p, str) and _QCHAR.fullmatch(p) is None:
                    raise ValueError(f"{where}: invalid query value {value!r} in {text!r}")
            pairs.append((key, t))
    return PathTemplate(tuple(segments), tuple(pairs))


def header_value(value: str) -> str:
    """Check a value may be sent as one header field value."""
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("control character in a header value")
    value.encode("latin-1")
    return value


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


def lookup(data: Any, path: tuple[str, ...] | list[str]) -> Any:
    """Follow a dotted path into JSON data (numbers index arrays); raises KeyError when absent."""
    cur = data
    for step in path:
        if isinstance(cur, Mapping):
            if step not in cur:
                raise KeyError(step)
            cur = cur[step]
        elif isinstance(cur, list) and step.isdigit() and int(step) < len(cur):
            cur = cur[int(step)]
        else:
            raise KeyError(step)
    return cur
