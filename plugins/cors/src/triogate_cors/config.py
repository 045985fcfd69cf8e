"""Settings of the cors plugin ([plugins.cors] or [routes.<r>.plugins.cors])."""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs
import triogate
from triogate import fields

_SIMPLE_METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]


def _origin_ok(origin: str) -> bool:
    return origin in ("*", "null") or re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/\s?#]+", origin) is not None


def _regexes(inst: object, name: str, value: list[str]) -> Iterator[tuple[str, str]]:
    for i, pattern in enumerate(value):
        try:
            re.compile(pattern)
        except re.error as exc:
            yield f"{name}[{i}]", f"invalid regular expression {pattern!r}: {exc}"


@attrs.define(frozen=True)
class CorsConfig:
    origins: list[str] = triogate.setting(
        factory=list, description='allowed origins, exact ("https://app.example.com"), or "*" for any origin',
        validator=fields.each(_origin_ok, 'scheme://host[:port] or "*"'))
    origin_regexes: list[str] = triogate.setting(
        factory=list, description="allowed origins as regular expressions, matched against the whole Origin value",
        validator=fields.Check(_regexes))
    methods: list[str] = triogate.setting(
        factory=lambda: list(_SIMPLE_METHODS), description="methods a preflight may ask for",
        validator=fields.method_names)
    headers: list[str] = triogate.setting(
        factory=list, description='request headers a preflight may ask for; empty or ["*"] allows what it asks for',
        validator=fields.header_names)
    exposed_headers: list[str] = triogate.setting(
        factory=list, description="response headers the browser lets scripts read (Access-Control-Expose-Headers)",
        validator=fields.header_names)
    credentials: bool = triogate.setting(
        False, description="allow cookies and Authorization (Access-Control-Allow-Credentials); never with a * origin")
    max_age: int | None = triogate.setting(
        None, description="seconds a browser may cache a preflight answer (Access-Control-Max-Age)",
        validator=fields.duration_or_zero)

    def __attrs_post_init__(self) -> None:
        if not self.origins and not self.origin_regexes:
            raise ValueError("origins: give at least one origin (or origin_regexes)")
        if self.credentials and "*" in self.origins:
            raise ValueError('credentials: a "*" origin cannot be combined with credentials = true; list the origins')
        if self.credentials and "*" in self.exposed_headers:
            raise ValueError('exposed_headers: "*" means nothing to browsers when credentials = true; list the headers')
