"""Finding a bearer token in a request (header, then cookie, then query) and removing it."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_plus

import triogate

__all__ = ["find_token", "strip_token"]


def find_token(
    req: triogate.Request, header_names: list[str], cookie_names: list[str], query_params: list[str],
) -> tuple[str, str, str] | None:
    """``(token, kind, name)`` of the first place holding a token, in header → cookie → query order."""
    headers = req.headers
    for name in header_names:
        value = headers.get(name)
        if value is None:
            continue
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return rest.strip(), "header", name
        if name != "authorization" and value.strip() and not rest:
            return value.strip(), "header", name
    if cookie_names and "cookie" in headers:
        jar = req.cookies()
        for name in cookie_names:
            if jar.get(name):
                return jar[name], "cookie", name
    if query_params and req.query:
        params = dict(parse_qsl(req.query, keep_blank_values=False))
        for name in query_params:
            if params.get(name):
                return params[name], "query", name
    return None


def strip_token(req: triogate.Request, kind: str, name: str) -> None:
    """Remove the credential from where it was found, leaving everything else as sent."""
    if kind == "header":
        req.headers.remove(name)
    elif kind == "cookie":
        kept = []
        for value in req.headers.get_all("cookie"):
            for part in value.split(";"):
                if part.strip() and part.split("=", 1)[0].strip() != name:
                    kept.append(part.strip())
        req.headers.remove("cookie")
        if kept:
            req.headers.add("cookie", "; ".join(kept))
    elif kind == "query":
        parts = [p for p in req.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) != name]
        req.query = "&".join(parts)
