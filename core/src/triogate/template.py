"""Value templates for plugin configs: ``"/users/{id}"``, ``"{principal.sub}"``, ``"/o?user={resp.user.id}"``.

Plugins that build a request or a header from config (request-transform, response-transform,
aggregate, your own) all need the same two things: a small template language, and rules
that keep a value taken from the client (or from a backend) from changing *where* a request
goes. Both live here, once, so every plugin gets the same syntax and the same protection:

- a template is parsed once, at config load (``parse``, ``parse_header``, ``parse_path``), and
  a malformed one is a ``ValueError`` naming its config key; rendering a request is a join;
- every value is encoded for the exact place it goes: ``encode_segment`` (exactly one path
  segment), ``encode_query_value`` (exactly one query value), ``header_value`` (one header
  field value: control characters but HTAB, and non-Latin-1, refused) or ``raw`` (JSON bodies and other text
  that is not parsed again);
- a path value that holds a dot-segment (``.``, ``..``, also behind an encoded slash,
  backslash or ``;``) or renders to an empty segment is refused: many servers decode
  ``%2F`` before resolving ``..``, so encoding alone cannot stop ``../admin`` from climbing.

References (``{{`` and ``}}`` are literal braces):

- ``{name}``: a route path parameter (percent-decoded first, then re-encoded for its place);
- ``{query.name}``: the first value of a query parameter of the client request;
- ``{header.name}``: a header of the client request;
- ``{principal.consumer}``, ``{principal.id}``, ``{principal.<claim>}``: the authenticated
  caller; claims are dotted for nested objects, numbers index arrays;
- extension namespaces a plugin declares with ``Namespace`` (aggregate's
  ``{resp.<backend>.<field>}``) and resolves with a function given to ``Resolver``.

A reference without a usable value for a request (absent, ``null``, an object or array, an
anonymous principal, a value that cannot be encoded for its place) raises ``Missing``; the
plugin decides what that means (a 400, a rule skipped, a backend not called).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import attrs

if TYPE_CHECKING:
    from .context import Context
    from .headers import Headers

__all__ = [
    "BUILTIN_NAMESPACES", "Missing", "Namespace", "PathTemplate", "Ref", "Resolver", "Template", "check_params",
    "encode_query_value", "encode_segment", "header_value", "lookup", "parse", "parse_header", "parse_path", "raw",
    "route_params", "scalar",
]

#: the namespaces every template knows; ``param`` is the one written without a prefix
BUILTIN_NAMESPACES = ("param", "query", "header", "principal")

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_ROUTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PCHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%]*")  # a literal path segment (RFC 3986 pchar, % kept)
_QCHAR = re.compile(r"[A-Za-z0-9\-._~!$'()*+,;:@/%]*")  # a literal query name or value (no & = # ?)
_SLASHES = re.compile(r"[/\\]")


class Missing(Exception):
    """A reference has no usable value for this request; ``why`` says why (for a problem detail)."""

    def __init__(self, ref: Ref, why: str = "no value") -> None:
        super().__init__(f"{{{ref.text}}}: {why}")
        self.ref = ref
        self.why = why


@attrs.frozen
class Namespace:
    """An extra reference namespace a plugin adds, e.g. aggregate's ``{resp.<backend>.<field>}``.

    ``min_parts`` is how many dotted names must follow the prefix; ``usage`` is how the
    reference is written, for error messages. The plugin resolves it by giving a function
    for ``name`` to ``Resolver(extra=...)``.
    """

    name: str
    min_parts: int = 1
    usage: str = ""

    def __attrs_post_init__(self) -> None:
        if self.name in BUILTIN_NAMESPACES or re.fullmatch(r"[a-z][a-z0-9_]*", self.name) is None:
            raise ValueError(f"invalid template namespace {self.name!r}")
        if not self.usage:
            object.__setattr__(self, "usage", f"{{{self.name}.<name>}}")


@attrs.frozen
class Ref:
    """One ``{...}`` reference: its namespace (``param``, ``query``, ...) and dotted key path."""

    ns: str
    path: tuple[str, ...]
    text: str  # as written between the braces, for messages

    @property
    def from_request(self) -> bool:
        """True when the value comes from the client request or its principal (a built-in namespace)."""
        return self.ns in BUILTIN_NAMESPACES


# ---------------------------------------------------------------- encodings


def raw(value: str) -> str:
    """Use the value as it is (JSON body fields, text that is not parsed again)."""
    return value


def encode_segment(value: str) -> str:
    """Exactly one path segment: everything but unreserved characters percent-encoded (``/``, ``?``, ``#``, ``%``)."""
    return quote(value, safe="")


def encode_query_value(value: str) -> str:
    """Exactly one query value: ``&``, ``=``, ``#``, ``+`` and ``%`` included are percent-encoded."""
    return quote(value, safe="")


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_value(value: str) -> str:
    """Check that a value can be sent as (part of) one header field value; ``ValueError`` if not.

    CR and LF would start a new header (response splitting); NUL, DEL and the other control
    characters (HTAB aside) are not field content (RFC 9110 §5.5): the upstream serializer
    refuses them, and the listener refuses them from clients. A field value is Latin-1 on the wire.
    """
    if _CONTROL.search(value) is not None:
        raise ValueError("not a valid header value")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("not a valid header value") from None
    return value


# ---------------------------------------------------------------- templates


@attrs.frozen
class Template:
    """Literal text and references, in order; ``refs`` is computed once at parse time."""

    parts: tuple[str | Ref, ...]
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "refs", tuple(p for p in self.parts if isinstance(p, Ref)))

    @property
    def literal(self) -> str | None:
        """The text of a template without references, else None."""
        return None if self.refs else "".join(self.parts)  # type: ignore[arg-type]

    def render(self, resolve: Callable[[Ref], str], encode: Callable[[str], str] = raw) -> str:
        """Join the literal parts and each resolved value passed through ``encode``.

        ``resolve`` raises ``Missing``; an ``encode`` that refuses a value (``ValueError``)
        becomes ``Missing`` for that reference too.
        """
        if not self.refs:
            return "".join(self.parts)  # type: ignore[arg-type]
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            value = resolve(p)
            try:
                out.append(encode(value))
            except ValueError as exc:
                raise Missing(p, str(exc)) from None
        return "".join(out)

    def render_header(self, resolve: Callable[[Ref], str]) -> bytes:
        """Render one header field value as bytes (use a template from ``parse_header``)."""
        value = self.render(resolve, header_value)
        if not self.refs:
            header_value(value)  # a literal not checked at parse time
        return value.encode("latin-1")


@functools.lru_cache(maxsize=64)
def _ref_re(extra: tuple[str, ...]) -> re.Pattern[str]:
    prefixes = "|".join(("query", "header", "principal", *extra))
    return re.compile(rf"(?:({prefixes})\.)?({_NAME}(?:\.[A-Za-z0-9_\-]+)*)")


def parse(text: str, where: str, extra: Iterable[Namespace] = ()) -> Template:
    """Parse a template; ``ValueError`` naming ``where`` on a malformed one.

    ``extra`` lists the plugin's own namespaces; any other ``{prefix.x}`` is an unknown reference.
    """
    namespaces = {n.name: n for n in extra}
    ref_re = _ref_re(tuple(namespaces))
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
            m = ref_re.fullmatch(body)
            if m is None:
                raise ValueError(f"{where}: invalid reference {{{body}}} in {text!r}")
            ns, key = m.group(1), m.group(2)
            path = tuple(key.split("."))
            if ns is None:
                if len(path) != 1:
                    known = ["{<route param>}", "{query.<name>}", "{header.<name>}", "{principal.<claim>}",
                             *(n.usage for n in namespaces.values())]
                    raise ValueError(f"{where}: unknown reference {{{body}}} (expected "
                                     f"{', '.join(known[:-1])} or {known[-1]})")
                ns = "param"
            elif ns in ("query", "header") and len(path) != 1:
                raise ValueError(f"{where}: {{{body}}}: expected {{{ns}.<name>}}")
            elif ns in namespaces and len(path) < namespaces[ns].min_parts:
                raise ValueError(f"{where}: {{{body}}}: expected {namespaces[ns].usage}")
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


def parse_header(text: str, where: str, extra: Iterable[Namespace] = ()) -> Template:
    """Parse a header value template; its literal text must already be a valid header value."""
    t = parse(text, where, extra)
    for p in t.parts:
        if isinstance(p, str):
            try:
                header_value(p)
            except ValueError:
                raise ValueError(f"{where}: {text!r} is not a valid header value"
                                 " (a control character or non-Latin-1)") from None
    return t


# ---------------------------------------------------------------- paths


def _dot_piece(value: str) -> bool:
    """True when a value holds a dot-segment between (back)slashes or before a ``;``.

    The value is sent percent-encoded, but many servers decode ``%2F`` (or cut at
    ``;``) before resolving dot-segments, so ``../admin`` could still climb there.
    """
    return any(p.split(";", 1)[0] in (".", "..") for p in _SLASHES.split(value))


@attrs.frozen
class PathTemplate:
    """A request target: path segments, an optional ``{rest}`` tail and query pairs, each rendered on its own."""

    segments: tuple[Template, ...]
    query: tuple[tuple[str, Template], ...] = ()
    rest: bool = False  # the template ends with {rest}: the remainder of the path after the route's prefix
    refs: tuple[Ref, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        refs = [r for s in self.segments for r in s.refs]
        refs.extend(r for _, v in self.query for r in v.refs)
        object.__setattr__(self, "refs", tuple(refs))

    def render(self, resolve: Callable[[Ref], str], rest: str = "") -> str:
        """The target (``/a/b?x=1``); ``Missing`` for a value that is absent, empty as a segment or a dot-segment."""

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
            value = seg.render(checked, encode_segment)
            if value == "":
                raise Missing(seg.refs[0], "a path segment cannot be empty")
            segs.append(value)
        target = "/" + "/".join(segs)  # type: ignore[arg-type]
        if self.rest:
            target = target.rstrip("/") + "/" + rest.lstrip("/")
        if self.query:
            target += "?" + "&".join(k + "=" + v.render(resolve, encode_query_value) for k, v in self.query)
        return target


def parse_path(text: str, where: str, *, params: set[str] | None = None, query: bool = False, rest: bool = False,
               extra: Iterable[Namespace] = ()) -> PathTemplate:
    """Parse ``/path/{x}`` (``query=True``: also ``?a={y}&b=literal``; never a fragment).

    With ``rest=True`` a last segment ``{rest}`` is the remainder of the path after the
    route's prefix (unless ``params``, the route's parameters, has one named ``rest``).
    Literal segments must be valid and cannot be ``.`` or ``..``.
    """
    extra = tuple(extra)
    if query:
        if not text.startswith("/"):
            raise ValueError(f"{where}: expected a path starting with /, got {text!r}")
        if "#" in text:
            raise ValueError(f"{where}: a path template has no fragment (#): {text!r}")
    elif not text.startswith("/") or "?" in text or "#" in text:
        raise ValueError(f"{where}: expected a path starting with / (no query or fragment), got {text!r}")
    path, _, qs = text.partition("?")
    raw_segments = path[1:].split("/")
    has_rest = rest and raw_segments[-1] == "{rest}" and not (params and "rest" in params)
    if has_rest:
        raw_segments = raw_segments[:-1]
    segments = []
    for seg in raw_segments:
        t = parse(seg, where, extra)
        for p in t.parts:
            if isinstance(p, str) and (_PCHAR.fullmatch(p) is None or p in (".", "..")):
                raise ValueError(f"{where}: invalid path segment {seg!r} in {text!r}")
            if (rest and isinstance(p, Ref) and p.ns == "param" and p.path[0] == "rest"
                    and not (params and "rest" in params)):
                raise ValueError(f"{where}: {{rest}} can only be the whole last segment")
        segments.append(t)
    pairs = []
    if qs:
        for item in qs.split("&"):
            key, eq, value = item.partition("=")
            if not key or _QCHAR.fullmatch(key) is None:
                raise ValueError(f"{where}: invalid query parameter name {key!r} in {text!r}")
            t = parse(value, where, extra) if eq else Template(("",))
            for p in t.parts:
                if isinstance(p, str) and _QCHAR.fullmatch(p) is None:
                    raise ValueError(f"{where}: invalid query value {value!r} in {text!r}")
            pairs.append((key, t))
    return PathTemplate(tuple(segments), tuple(pairs), has_rest)


def route_params(paths: Iterable[str]) -> set[str]:
    """The parameters every one of a route's path patterns provides (``/u/{id}`` → ``{"id"}``)."""
    sets = [set(_ROUTE_PARAM.findall(p)) for p in paths]
    return set.intersection(*sets) if sets else set()


def check_params(refs: Iterable[Ref], params: set[str] | None, where: str = "") -> None:
    """``ValueError`` for a ``{param}`` reference the route does not provide (``params`` None: route unknown)."""
    if params is None:
        return
    for ref in refs:
        if ref.ns == "param" and ref.path[0] not in params:
            have = ", ".join(sorted(params)) or "none"
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}{{{ref.text}}} is not a parameter of every path of the route"
                             f" (parameters: {have})")


# ---------------------------------------------------------------- values


def scalar(value: Any) -> str | None:
    """The text of a JSON scalar (``true``, ``3.5``); None for null, objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return None


def lookup(data: Any, path: Iterable[str]) -> Any:
    """Follow a dotted path into JSON data (numbers index arrays); ``KeyError`` when absent."""
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


class Resolver:
    """The values of references for one request: call it with a ``Ref``, get text or ``Missing``.

    ``headers`` overrides where ``{header.x}`` reads (e.g. a copy taken before header rules
    run, so rules see the headers as received). ``extra`` maps a plugin namespace to a
    function returning the raw JSON value of a reference (or raising ``Missing``).
    """

    __slots__ = ("_query", "ctx", "extra", "headers")

    def __init__(self, ctx: Context, *, headers: Headers | None = None,
                 extra: Mapping[str, Callable[[Ref], Any]] | None = None) -> None:
        self.ctx = ctx
        self.headers = headers if headers is not None else ctx.request.headers
        self.extra = extra or {}
        self._query: dict[str, list[str]] | None = None

    def value(self, ref: Ref) -> Any:
        """The raw value of a reference (None when absent)."""
        ns = ref.ns
        if ns == "param":
            text = self.ctx.params.get(ref.path[0])
            return unquote(text) if text is not None else None
        if ns == "query":
            if self._query is None:
                self._query = self.ctx.request.query_params()
            values = self._query.get(ref.path[0])
            return values[0] if values else None
        if ns == "header":
            return self.headers.get(ref.path[0])
        if ns == "principal":
            p = self.ctx.principal
            if p is None or p.anonymous:
                raise Missing(ref, "no authenticated principal")
            if ref.path == ("consumer",):
                return p.consumer
            if ref.path == ("id",):
                return p.id
            try:
                return lookup(p.claims, ref.path)
            except KeyError:
                return None
        fn = self.extra.get(ns)
        if fn is None:
            raise Missing(ref, f"nothing resolves {{{ns}...}} here")
        return fn(ref)

    def __call__(self, ref: Ref) -> str:
        value = self.value(ref)
        text = scalar(value)
        if text is None:
            raise Missing(ref, "no value" if value is None else "not a string, number or boolean")
        return text
