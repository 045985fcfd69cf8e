"""RFC 9111 rules as pure functions: may a response be stored, how long is it fresh, how old is it."""

from __future__ import annotations

from triogate import Headers

from .directives import CacheControl, delta_seconds, field_names, http_date

__all__ = [
    "ERROR_STATUSES",
    "HEURISTIC_STATUSES",
    "etag_matches",
    "freshness_lifetime",
    "initial_age",
    "not_modified_since",
    "selecting_values",
    "strip_fields",
    "vary_names",
    "why_not_storable",
]

#: statuses that are heuristically cacheable (RFC 9110 §15.1); 206 is left out (no range support)
HEURISTIC_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
#: "an error" for stale-if-error (RFC 5861 §4)
ERROR_STATUSES = frozenset({500, 502, 503, 504})
#: never stored, whatever the response says (RFC 9111 §3.1: connection-specific; ours to compute)
UNSTORED_FIELDS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding",
                             b"upgrade", b"trailer", b"proxy-authenticate", b"proxy-authentication-info",
                             b"content-length", b"age", b"x-request-id"})


def freshness_lifetime(
    status: int, cc: CacheControl, headers: Headers, response_time: float, *,
    heuristic_fraction: float, heuristic_max: float, default_ttl: float, heuristics: bool = True,
) -> float:
    """RFC 9111 §4.2.1 for a shared cache: s-maxage, max-age, Expires, then a heuristic where allowed.

    ``heuristics=False`` (a request with cookies, by default) leaves only explicit freshness:
    an origin that personalizes by cookie without saying so must not have one client's
    answer served to others.
    """
    s = delta_seconds(cc, "s-maxage")
    if s is not None:
        return float(s)
    m = delta_seconds(cc, "max-age")
    if m is not None:
        return float(m)
    expires = headers.get_all("expires")
    date = http_date(headers.get("date")) or response_time
    if expires:
        ts = http_date(expires[0]) if len(expires) == 1 else None
        return max(0.0, ts - date) if ts is not None else 0.0  # invalid (e.g. "0") means already expired
    if heuristics and (status in HEURISTIC_STATUSES or "public" in cc):  # §4.2.2: heuristics only where allowed
        lm = http_date(headers.get("last-modified"))
        if lm is not None and heuristic_fraction > 0 and lm < date:
            return min((date - lm) * heuristic_fraction, heuristic_max)
        return default_ttl
    return 0.0


def initial_age(headers: Headers, request_time: float, response_time: float) -> float:
    """The corrected initial age (RFC 9111 §4.2.3)."""
    raw = headers.get("age")
    age_value = float(raw.strip()) if raw is not None and raw.strip().isdigit() else 0.0
    date = http_date(headers.get("date"))
    apparent = max(0.0, response_time - date) if date is not None else 0.0
    corrected = age_value + max(0.0, response_time - request_time)
    return max(apparent, corrected)


def why_not_storable(
    status: int, cc: CacheControl, req_cc: CacheControl, headers: Headers, *,
    statuses: frozenset[int], authorized: bool, allow_set_cookie: bool,
) -> str | None:
    """None when a shared cache may store the response (RFC 9111 §3, §3.5), else a short reason."""
    if status not in statuses:
        return "status"
    if "no-store" in cc:
        return "no-store"
    if "no-store" in req_cc:
        return "request-no-store"
    if "private" in cc and not field_names(cc["private"]):
        return "private"
    if authorized and not ("public" in cc or "s-maxage" in cc or "must-revalidate" in cc):
        return "authorization"
    if not allow_set_cookie and "set-cookie" in headers:
        return "set-cookie"
    if "*" in vary_names(headers):
        return "vary-star"
    return None


def strip_fields(raw: list[tuple[bytes, bytes]], cc: CacheControl) -> list[tuple[bytes, bytes]]:
    """The header fields to store: without connection/framing fields and those named by
    ``private="..."`` / ``no-cache="..."`` (which a shared cache must not reuse unvalidated)."""
    drop = set(UNSTORED_FIELDS)
    for d in ("private", "no-cache"):
        if d in cc:
            drop.update(f.encode("latin-1") for f in field_names(cc[d]))
    return [(n, v) for n, v in raw if n not in drop]


def vary_names(headers: Headers) -> tuple[str, ...]:
    names = {v.lower() for v in headers.get_list("vary")}
    return tuple(sorted(names))


def selecting_values(request_headers: Headers, names: tuple[str, ...]) -> dict[str, str]:
    """The request's values of the Vary-named fields, normalized (lines joined, list spacing collapsed)."""
    out: dict[str, str] = {}
    for name in names:
        values = request_headers.get_list(name)
        out[name] = ",".join(" ".join(v.split()) for v in values)
    return out


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag.removeprefix("W/")


def etag_matches(if_none_match: list[str], etag: str | None) -> bool:
    """Weak comparison of ``If-None-Match`` against a stored ETag (RFC 9110 §13.1.2)."""
    if etag is None:
        return False
    if any(t.strip() == "*" for t in if_none_match):
        return True
    mine = _opaque(etag)
    return any(_opaque(t) == mine for t in if_none_match)


def not_modified_since(if_modified_since: str | None, last_modified: str | None) -> bool:
    ims = http_date(if_modified_since)
    lm = http_date(last_modified)
    return ims is not None and lm is not None and lm <= ims
