"""Settings of the cors plugin ([plugins.cors] or [routes.<r>.plugins.cors])."""

from __future__ import annotations

import re

import attrs
import triogate

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SIMPLE_METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]


@attrs.define(frozen=True)
class CorsConfig:
    origins: list[str] = triogate.setting(
        factory=list, description='allowed origins, exact ("https://app.example.com"), or "*" for any origin')
    origin_regexes: list[str] = triogate.setting(
        factory=list, description="allowed origins as regular expressions, matched against the whole Origin value")
    methods: list[str] = triogate.setting(
        factory=lambda: list(_SIMPLE_METHODS), description="methods a preflight may ask for")
    headers: list[str] = triogate.setting(
        factory=list, description='request headers a preflight may ask for; empty or ["*"] allows what it asks for')
    exposed_headers: list[str] = triogate.setting(
        factory=list, description="response headers the browser lets scripts read (Access-Control-Expose-Headers)")
    credentials: bool = triogate.setting(
        False, description="allow cookies and Authorization (Access-Control-Allow-Credentials); never with a * origin")
    max_age: int | None = triogate.setting(
        None, description="seconds a browser may cache a preflight answer (Access-Control-Max-Age)")

    def __attrs_post_init__(self) -> None:
        if not self.origins and not self.origin_regexes:
            raise ValueError("origins: give at least one origin (or origin_regexes)")
        for i, origin in enumerate(self.origins):
            if origin == "*":
                continue
            if not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/\s?#]+", origin) and origin != "null":
                raise ValueError(f"origins[{i}]: expected scheme://host[:port] or \"*\", got {origin!r}")
        if self.credentials and "*" in self.origins:
            raise ValueError('credentials: a "*" origin cannot be combined with credentials = true; list the origins')
        for i, pattern in enumerate(self.origin_regexes):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"origin_regexes[{i}]: invalid regular expression {pattern!r}: {exc}") from None
        for i, method in enumerate(self.methods):
            if not re.fullmatch(r"[A-Z]+", method):
                raise ValueError(f"methods[{i}]: expected an upper-case method name, got {method!r}")
        for field in ("headers", "exposed_headers"):
            for i, name in enumerate(getattr(self, field)):
                if not (_TOKEN.fullmatch(name) or (field == "headers" and name == "*")):
                    raise ValueError(f"{field}[{i}]: expected a header name, got {name!r}")
        if self.credentials and "*" in self.exposed_headers:
            raise ValueError('exposed_headers: "*" means nothing to browsers when credentials = true; list the headers')
        if self.max_age is not None and self.max_age < 0:
            raise ValueError("max_age: expected 0 or more seconds")
