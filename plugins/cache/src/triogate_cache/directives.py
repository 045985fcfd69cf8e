"""Parsing of ``Cache-Control`` (RFC 9111 §5.2) and HTTP dates (RFC 9110 §5.6.7)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from triogate import Headers

__all__ = [
    "CacheControl",
    "delta_seconds",
    "format_http_date",
    "http_date",
    "parse_cache_control",
    "request_directives",
]

CacheControl = dict[str, str | None]


def parse_cache_control(values: list[str]) -> CacheControl:
    """``{directive (lower-case): argument or None}``; quoted arguments are unquoted.

    Lists in quoted strings (``no-cache="set-cookie, x-a"``) stay one argument. A
    directive given twice keeps the first value, except that ``max-age``/``s-maxage``
    given twice with different values become invalid (``""``), which callers treat as stale.
    """
    out: CacheControl = {}
    text = ",".join(values)
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in "=,":
            i += 1
        name = text[start:i].strip().lower()
        arg: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                i += 1
                buf: list[str] = []
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(text[i])
                    i += 1
                i += 1
                arg = "".join(buf)
                while i < n and text[i] != ",":
                    i += 1
            else:
                start = i
                while i < n and text[i] != ",":
                    i += 1
                arg = text[start:i].strip()
        if not name:
            continue
        if name in out:
            if name in ("max-age", "s-maxage") and out[name] != arg:
                out[name] = ""
            continue
        out[name] = arg
    return out


def request_directives(headers: Headers) -> CacheControl:
    """Request ``Cache-Control``; ``Pragma: no-cache`` counts as ``no-cache`` when there is no Cache-Control."""
    values = headers.get_all("cache-control")
    if values:
        return parse_cache_control(values)
    if any(p.lower() == "no-cache" for p in headers.get_list("pragma")):
        return {"no-cache": None}
    return {}


def delta_seconds(cc: CacheControl, name: str) -> int | None:
    """The non-negative integer argument of ``name``; None when absent; 0 when invalid (treated as stale)."""
    if name not in cc:
        return None
    raw = cc[name]
    if raw is None or not raw.isdigit():
        return 0
    return min(int(raw), 2**31)


def field_names(arg: str | None) -> list[str]:
    """Field names listed in a qualified ``private="..."`` / ``no-cache="..."`` argument."""
    if not arg:
        return []
    return [p.strip().lower() for p in arg.split(",") if p.strip()]


def http_date(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP date, or None when absent or invalid."""
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(ts), tz=UTC), usegmt=True)
