"""Shared config field checks: header names, URLs, CIDRs, paths, durations, the token location.

Declared once for the core's models and every plugin, as Kong's ``typedefs`` are. Each check is
an attrs validator (``setting(..., validator=fields.header_names)``): constructing a config in
Python raises :class:`FieldError` at the first bad value, while the strict loader
(:func:`triogate.config.structure`) runs every check of a whole table and reports each bad value
with its full key path (``plugins.jwt.header_names[1]: expected a header name, got 'a b'``),
so one mistake never hides another.

A check sees the instance too, so a rule between two fields of one table (``tls_cert`` needs
``tls_key``) lives next to the field it is about and is reported with the others; rules across
tables (a route's upstream exists) stay in the loader.

A check may carry the JSON Schema fragment it amounts to (``schema`` for the value, ``items``
for each item of a list or value of a table): ``triogate schema`` merges them into the field's
schema, so an editor rejects what ``triogate check`` rejects wherever a pattern or a bound can say it.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import attrs

__all__ = [
    "HEADER_NAME", "Check", "FieldError", "FieldErrors", "TokenLocation", "at_least", "check", "cidrs",
    "duration", "duration_or_zero", "each", "header_name", "header_name_values", "header_names", "http_url",
    "is_header_name", "is_http_url", "join_keys", "key_path", "method_names", "origin_url", "path", "paths",
    "problems", "realm", "schema_of",
]

#: an RFC 9110 field name (a token): what every header name in a config must match
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_METHOD = re.compile(r"[A-Z]+")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def is_header_name(name: object) -> bool:
    """True for a valid header field name (an RFC 9110 token)."""
    return isinstance(name, str) and HEADER_NAME.fullmatch(name) is not None


def key_path(path: str, step: str | int) -> str:
    """``path`` extended by one key or index as TOML writes it: ``a.b``, ``a[0]``, ``a."odd key"``."""
    if isinstance(step, int):
        return f"{path}[{step}]"
    step = str(step)
    if _BARE_KEY.fullmatch(step):
        return f"{path}.{step}" if path else step
    return f'{path}."{step}"' if path else f'"{step}"'


def join_keys(path: str, key: str) -> str:
    """``path`` followed by a relative key path (``"targets[0].url"``, ``"[2]"`` or ``""``)."""
    if not key:
        return path
    if not path or key.startswith("["):
        return path + key
    return f"{path}.{key}"


class FieldError(ValueError):
    """One bad value: ``key`` is its path relative to the table checked (``""``: the table itself)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class FieldErrors(ValueError):
    """Every bad value of one table, each a :class:`FieldError` keyed relative to that table."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


# While the loader builds a table it defers the checks (and then runs all of them, see problems()).
_deferred: contextvars.ContextVar[bool] = contextvars.ContextVar("triogate_fields_deferred", default=False)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Build attrs instances without running these checks (the loader then runs all of them with
    :func:`problems`); a context variable, so other threads and tasks are not affected."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


def is_deferred() -> bool:
    return _deferred.get()


Finder = Callable[[Any, str, Any], Iterable[tuple[str, str]]]


@attrs.frozen
class Check:
    """An attrs validator that can report every problem of its field: ``(relative key, message)`` pairs.

    ``find(instance, field name, value)`` yields the problems; keys are relative to the table
    (``"header_names[1]"``; ``""`` for the table itself). ``schema`` / ``items``: the JSON Schema
    fragment the check amounts to, for the value / for each item of a list or table (``triogate
    schema`` merges them; leave them unset when no pattern or bound can say it).
    """

    find: Finder
    schema: dict[str, Any] | None = None
    items: dict[str, Any] | None = None

    def __call__(self, inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if _deferred.get():
            return
        for key, message in self.find(inst, attribute.name, value):
            raise FieldError(key, message)


def check(ok: Callable[[Any], bool], expected: str, *, show_value: bool = True, optional: bool = True,
          schema: dict[str, Any] | None = None) -> Check:
    """A check of one value: ``ok(value)`` or the error ``expected <expected>, got <value>``.

    ``None`` passes when ``optional`` (fields typed ``X | None``); ``schema``: its JSON Schema fragment.
    """

    def find(inst: Any, name: str, value: Any) -> Iterator[tuple[str, str]]:
        if value is None and optional:
            return
        if not ok(value):
            yield name, f"expected {expected}" + (f", got {value!r}" if show_value else "")

    return Check(find, schema=schema)


def each(ok: Callable[[Any], bool], expected: str, *, schema: dict[str, Any] | None = None) -> Check:
    """A check of every item of a list (``name[i]``) or every value of a table (``name.key``);
    ``schema``: the JSON Schema fragment of one item."""

    def find(inst: Any, name: str, value: Any) -> Iterator[tuple[str, str]]:
        items = value.items() if isinstance(value, dict) else enumerate(value or ())
        for k, item in items:
            if not ok(item):
                yield key_path(name, k), f"expected {expected}, got {item!r}"

    return Check(find, items=schema)


def problems(obj: Any, path: str = "") -> list[FieldError]:
    """Every problem the checks of ``obj`` (an attrs instance) and of the tables in it find, in field order."""
    out: list[FieldError] = []
    _walk(obj, path, out)
    return out


def _walk(obj: Any, path: str, out: list[FieldError]) -> None:
    if attrs.has(type(obj)):
        for f in attrs.fields(type(obj)):
            if f.metadata.get("internal"):
                continue
            value = getattr(obj, f.name)
            for c in _checks(f.validator):
                out.extend(FieldError(join_keys(path, key), message) for key, message in c.find(obj, f.name, value))
            _walk(value, key_path(path, f.name), out)
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _walk(item, key_path(path, i), out)
    elif isinstance(obj, dict):
        for k, item in obj.items():
            _walk(item, key_path(path, k), out)


def schema_of(validator: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema fragments of a field's checks: ``(for the value, for each item)``."""
    value: dict[str, Any] = {}
    items: dict[str, Any] = {}
    for c in _checks(validator):
        value.update(c.schema or {})
        items.update(c.items or {})
    return value, items


def _checks(validator: Any) -> list[Check]:
    if isinstance(validator, Check):
        return [validator]
    inner = getattr(validator, "_validators", None)  # attrs' and_(): a list given as validator=
    return [v for v in inner if isinstance(v, Check)] if inner else []


# --------------------------------------------------------------------------- the typedefs

_HEADER_SCHEMA = {"pattern": "^" + HEADER_NAME.pattern + "$"}
#: a header name (or None)
header_name = check(is_header_name, "a header name", schema=_HEADER_SCHEMA)
#: a list of header names
header_names = each(is_header_name, "a header name", schema=_HEADER_SCHEMA)
#: a table whose values are header names (``claims_to_headers``: claim -> header)
header_name_values = each(is_header_name, "a header name", schema=_HEADER_SCHEMA)
#: a list of upper-case method names
method_names = each(lambda m: _METHOD.fullmatch(m) is not None, 'an upper-case method name like "GET"',
                    schema={"pattern": "^[A-Z]+$"})

#: a TCP port, 0-65535, as a regular expression (for JSON Schema patterns)
PORT_PATTERN = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
# scheme (any case, as urlsplit reads it), optional userinfo, a host (or [IPv6]), an optional port
_URL_ORIGIN = (r"[hH][tT][tT][pP][sS]?://([^/?#@\s]*@)?(\[[0-9A-Za-z:.%]+\]|[^/?#:@\[\]\s]+)"
               f"(:({PORT_PATTERN})?)?")


def is_http_url(value: str) -> bool:
    """An http:// or https:// URL with a host."""
    u = urlsplit(value)
    return u.scheme in ("http", "https") and bool(u.hostname)


#: an http:// or https:// URL with a host (or None)
http_url = check(is_http_url, "an http(s) URL", schema={"pattern": "^" + _URL_ORIGIN + "([/?#].*)?$"})


def _origin_problems(inst: Any, name: str, value: str) -> Iterator[tuple[str, str]]:
    u = urlsplit(value)
    if u.scheme not in ("http", "https") or not u.hostname:
        yield name, f"expected http://host:port or https://host:port, got {value!r}"
    elif u.path not in ("", "/") or u.query:
        yield name, f"a target is an origin, without path or query: {value!r}"
    try:
        _ = u.port  # raises on a bad port
    except ValueError:
        yield name, f"bad port in {value!r}"


#: the origin of an upstream server: http(s)://host[:port], no path or query
origin_url = Check(_origin_problems, schema={"pattern": "^" + _URL_ORIGIN + "/?[?]?(#.*)?$"})


def cidrs(*, strict: bool = False) -> Check:
    """A list of IP addresses or CIDRs; ``strict`` refuses host bits (``10.0.0.1/8``) as ambiguous."""

    def find(inst: Any, name: str, value: list[str]) -> Iterator[tuple[str, str]]:
        for i, cidr in enumerate(value):
            try:
                ipaddress.ip_network(cidr, strict=strict)
            except ValueError as exc:
                why = f" ({exc})" if strict else ""
                yield key_path(name, i), f"expected an IP address or CIDR, got {cidr!r}{why}"

    return Check(find)


def _is_path(value: str) -> bool:
    return value.startswith("/")


#: a path starting with / (or None)
path = check(_is_path, "a path starting with /", schema={"pattern": "^/"})
#: a list of paths starting with /
paths = each(_is_path, "a path starting with /", schema={"pattern": "^/"})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: seconds above 0 (or None)
duration = check(lambda v: _number(v) and v > 0, "a number of seconds above 0", show_value=False,
                 schema={"exclusiveMinimum": 0})
#: 0 or more seconds (or None)
duration_or_zero = check(lambda v: _number(v) and v >= 0, "0 or more seconds", show_value=False,
                         schema={"minimum": 0})


def at_least(minimum: int, *, show_value: bool = False) -> Check:
    """A number of at least ``minimum`` ("expected 0 or more" / "expected at least 1")."""
    expected = "0 or more" if minimum == 0 else f"at least {minimum}"
    return check(lambda v: v >= minimum, expected, show_value=show_value, schema={"minimum": minimum})


#: a realm for a WWW-Authenticate challenge: no quotes or backslashes
realm = Check(lambda inst, name, value: [(name, "must not contain quotes or backslashes")]
              if '"' in value or "\\" in value else [], schema={"pattern": '^[^"\\\\]*$'})


# --------------------------------------------------------------------------- the token location table


def _one_place(inst: Any, name: str, value: Any) -> Iterator[tuple[str, str]]:
    yield from header_names.find(inst, name, value)
    if not (inst.header_names or inst.cookie_names or inst.query_params):
        yield "header_names", "at least one place to look for the token (header_names, cookie_names, query_params)"


@attrs.define(frozen=True, kw_only=True)
class TokenLocation:
    """Where a bearer token is looked for, shared by token-checking plugins (jwt, oauth2-introspection).

    A plugin's ``Config`` inherits it and passes the fields to :func:`triogate.auth.find_token`.
    """

    header_names: list[str] = attrs.field(
        factory=lambda: ["authorization"], validator=Check(_one_place),
        metadata={"description": 'headers searched first ("authorization" expects "Bearer <token>")'})
    cookie_names: list[str] = attrs.field(factory=list, metadata={"description": "cookies searched next"})
    query_params: list[str] = attrs.field(factory=list, metadata={"description": "query parameters searched last"})
    strip_credential: bool = attrs.field(
        default=True, metadata={"description": "remove the token from the request before forwarding"})
