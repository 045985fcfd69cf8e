"""Path normalization and the route table.

Routing and forwarding use the same normalized path, so no encoding trick
(``%2e%2e``, ``//``, ``%41``) can reach an upstream route that the auth
plugins of another route did not see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["BadPath", "PathPolicy", "normalize_path", "Route", "Router", "compile_path", "prefix_of",
           "strip_matrix_params", "tail_segments"]

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar plus "/" and "%" (validated separately); anything else is rejected.
_PATH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%")


class BadPath(ValueError):
    """The request target cannot be normalized safely (answered with 400)."""


def _pct(m: re.Match[str]) -> str:
    hx = m.group(1)
    byte = int(hx, 16)
    if byte in _UNRESERVED:
        return chr(byte)
    return "%" + hx.upper()


def normalize_path(path: str) -> str:
    """Normalize a request path (RFC 3986 §6.2.2).

    Percent-decodes unreserved characters only (``%2F`` stays encoded), upper-cases
    the remaining escapes, merges repeated slashes and resolves dot-segments;
    a path that climbs above the root is rejected.
    """
    if not path.startswith("/"):
        raise BadPath("path must start with /")
    if not _PATH_CHARS.issuperset(path):
        raise BadPath("invalid character in path")
    if "%" in path:
        if _BAD_PCT.search(path):
            raise BadPath("invalid percent-encoding")
        path = _PCT_RE.sub(_pct, path)
        if "%00" in path:
            raise BadPath("encoded NUL in path")
    if "%2F" in path or "%5C" in path or ";" in path:
        _check_hidden_dot_segments(path)
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if "/." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if not out:
                raise BadPath("path climbs above the root")
            out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    return "/" + "/".join(out)


def _check_hidden_dot_segments(path: str) -> None:
    """Reject dot-segments that another parser would see: ``..%2F``, ``..%5C``, ``..;x``.

    ``%2F`` stays encoded in the normalized path, but many servers decode it (or treat
    ``;`` as a parameter delimiter) before resolving ``..``: the upstream would then
    serve a path that routing never saw.
    """
    for seg in path.split("/"):
        if "%2F" in seg or "%5C" in seg or ";" in seg:
            for piece in seg.replace("%2F", "/").replace("%5C", "/").split("/"):
                if piece.split(";", 1)[0] in (".", ".."):
                    raise BadPath("dot-segment hidden by an encoded slash or a path parameter")


_SLASHES = re.compile(r"/{2,}")
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TRAILING_DOT = re.compile(r"\.(?:/|$)")


_MATRIX = re.compile(r";|%3B")


def strip_matrix_params(path: str) -> str:
    """The path without ``;`` parameters (``/a;v=1/b;x`` → ``/a/b``): how Tomcat, Spring and
    Jetty read it, so routes are matched on what such an upstream will serve. An encoded
    ``%3B`` counts too (a server that decodes before it splits would see a ``;``)."""
    return "/".join(_MATRIX.split(seg, 1)[0] for seg in path.split("/"))


def tail_segments(path: str, count: int) -> str:
    """The last ``count`` segments of ``path`` with their leading slashes (``""`` for 0)."""
    if count <= 0:
        return ""
    cut = len(path)
    for _ in range(count):
        cut = path.rfind("/", 0, cut)
    return path[cut:]


class PathPolicy:
    """Paths an upstream may read differently from the router (``gateway.paths``).

    The normalized path can still hold forms that some upstream servers rewrite before they
    route: an encoded ``/`` or ``\\`` (decoded by many), a segment ending in ``.`` (stripped by
    Windows/IIS and some frameworks) and ``;`` path parameters (dropped by Tomcat, Spring,
    Jetty). With a public catch-all route each would reach a protected upstream path
    unseen. :meth:`screen` refuses the first two (unless kept by config) and gives the view
    that routes are matched on: the path without ``;`` parameters.
    """

    __slots__ = ("_suspect", "_slash", "_dot")

    def __init__(self, encoded_slash: str = "reject", trailing_dot: str = "reject") -> None:
        self._slash = encoded_slash == "reject"
        self._dot = trailing_dot == "reject"
        parts = [";", "%3B"] + (["%2F", "%5C"] if self._slash else []) + ([r"\.(?:/|$)"] if self._dot else [])
        self._suspect = re.compile("|".join(parts))

    def screen(self, path: str) -> tuple[str | None, str]:
        """``(reason to refuse with 400 or None, the path routes are matched on)``."""
        if self._suspect.search(path) is None:  # the common case: one regex scan
            return None, path
        if self._slash and ("%2F" in path or "%5C" in path):
            return "encoded slash or backslash in path (gateway.paths.encoded_slash)", path
        view = strip_matrix_params(path) if (";" in path or "%3B" in path) else path
        if self._dot and _TRAILING_DOT.search(view):
            return "path segment ending in '.' (gateway.paths.trailing_dot)", path
        return None, view


def prefix_of(pattern: str) -> str:
    """A route path with a trailing ``/*`` (how Kong, Traefik and KrakenD write a prefix) as the
    plain prefix it means: ``/svc/*`` → ``/svc``, ``/*`` → ``/``; any other path unchanged."""
    if pattern.endswith("/*"):
        return pattern[:-2] or "/"
    return pattern


def compile_path(pattern: str, exact: bool, ignore_case: bool = False) -> tuple[re.Pattern[str] | None, str]:
    """Return (regex or None for plain prefixes, literal prefix used for ordering).

    A trailing ``/*`` is another spelling of the prefix (see :func:`prefix_of`).
    """
    pattern = prefix_of(pattern)
    literal = pattern.split("{", 1)[0]
    if "{" not in pattern:
        return None, literal
    rx = ""
    pos = 0
    for m in _PARAM_RE.finditer(pattern):
        rx += re.escape(pattern[pos:m.start()]) + f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    rx += re.escape(pattern[pos:])
    rx = "^" + rx.rstrip("/") + ("/?$" if exact else "(?P<__rest>/.*)?$")
    return re.compile(rx, re.IGNORECASE if ignore_case else 0), literal


class Route:
    """A compiled route: match conditions plus whatever the pipeline attaches (plugins, upstream)."""

    __slots__ = (
        "name", "config", "methods", "hosts", "headers", "patterns", "exact", "ignore_case", "matrix_params",
        "chain", "upstream", "data", "upgrades",
    )

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        methods = set(config.methods)
        if "GET" in methods:
            methods.add("HEAD")  # RFC 9110 §9.3.2: a server that answers GET answers HEAD the same way
        self.methods = frozenset(methods) if methods else None
        self.hosts = [h.lower().rstrip(".") for h in config.hosts]
        self.headers = [(k.lower(), v) for k, v in config.headers.items()]
        self.exact = config.path_match == "exact"
        self.ignore_case = bool(getattr(config, "case_insensitive", False))
        self.matrix_params = bool(getattr(config, "allow_matrix_params", False))
        self.patterns = [(p, *compile_path(p, self.exact, self.ignore_case)) for p in (config.paths or ["/"])]
        # Upgrade protocols tunnelled (lower case, without /version); h2c never (a config error)
        self.upgrades = frozenset(p.partition("/")[0].strip().lower() for p in getattr(config, "upgrades", ())) - {"h2c"}
        self.chain: Any = None
        self.upstream: Any = None
        self.data: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Route {self.name}>"


def _first_segment_of_literal(entry: tuple[Any, ...]) -> str | None:
    """The first path segment every path this entry matches starts with ("/api"), or None if not fixed.

    A literal prefix matches the path itself or the path followed by "/" (prefix and exact routes):
    its first segment is complete even without a further "/". A pattern's literal part is complete
    only up to a "/" after it (``/users/{id}`` → "/users"; ``/v{n}/x`` → None).
    """
    _, pattern, regex, literal, _route, ignore_case = entry
    if ignore_case or literal in ("", "/"):
        return None
    if regex is not None:
        literal = pattern.split("{", 1)[0]  # before its trailing "/" was stripped
    end = literal.find("/", 1)
    if end >= 0:
        return literal[:end]
    return None if regex is not None else literal


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


class Router:
    """Most specific match wins: exact beats prefix, longer literal prefix beats shorter,
    then routes with more conditions (host, methods, headers)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        entries = []
        for route in routes:
            for pattern, regex, literal in route.patterns:
                key = (
                    1 if route.exact else 0,
                    len(literal.rstrip("/")) + (0.5 if regex is not None else 0),
                    1 if route.hosts else 0,
                    len(route.headers),
                    1 if route.methods else 0,
                )
                if route.ignore_case:
                    pattern, literal = pattern.lower(), literal.lower()
                entries.append((key, pattern, regex, literal.rstrip("/"), route, route.ignore_case))
        entries.sort(key=lambda e: e[0], reverse=True)
        self.entries = entries
        self.routes = list({id(e[4]): e[4] for e in entries}.values())
        self.ignore_case = any(r.ignore_case for r in self.routes)
        # Candidates by the path's first segment, each list in match order: an entry whose literal
        # prefix names a whole first segment can only match paths with that segment; the others
        # (catch-alls, case-insensitive routes, patterns whose first segment has a parameter) are in
        # every list. Matching a path then scans its segment's routes, not the whole table.
        keyed: dict[str, list[Any]] = {}
        for e in entries:
            seg = _first_segment_of_literal(e)
            if seg is not None:
                keyed.setdefault(seg, [])
        self._always = [e for e in entries if _first_segment_of_literal(e) is None]
        self._by_segment = {seg: [e for e in entries if _first_segment_of_literal(e) in (seg, None)] for seg in keyed}

    def match(self, method: str, host: str, path: str, headers: Any) -> tuple[Route | None, dict[str, str], str]:
        """Return (route, params, rest) or (None, {}, path); ``rest`` is the part after the matched prefix."""
        end = path.find("/", 1)
        candidates = self._by_segment.get(path if end < 0 else path[:end], self._always)
        return self.scan(candidates, method, host, path, headers)

    def scan(self, entries: list[Any], method: str, host: str, path: str, headers: Any
             ) -> tuple[Route | None, dict[str, str], str]:
        """:meth:`match` over ``entries`` (``self.entries``: the whole table, as the reference)."""
        allowed: set[str] = set()
        original = path
        lower = path.lower() if self.ignore_case else path
        for _, pattern, regex, literal, route, ignore_case in entries:
            path = lower if ignore_case else original
            if regex is None:
                if route.exact:
                    if path != pattern and path != literal and not (literal == "" and path == "/"):
                        continue
                    rest = ""
                elif literal == "":
                    rest = original
                elif path == literal:
                    rest = ""
                elif path.startswith(literal) and path[len(literal)] == "/":
                    rest = original[len(literal):]
                else:
                    continue
                params: dict[str, str] = {}
            else:
                m = regex.match(original)
                if m is None:
                    continue
                params = m.groupdict()
                rest = params.pop("__rest", None) or ""
            if route.hosts and not any(_host_matches(h, host) for h in route.hosts):
                continue
            if route.headers and not all(headers.get(k) == v for k, v in route.headers):
                continue
            if route.methods is not None and method not in route.methods:
                allowed.update(route.methods)
                continue
            return route, params, rest
        # no route: when only the method was wrong, "__method_mismatch" carries the Allow value (405)
        return None, {"__method_mismatch": ", ".join(sorted(allowed))} if allowed else {}, original

    def table(self) -> list[dict[str, Any]]:
        """The route table in match order, for ``triogate routes`` and the admin API."""
        return [
            {
                "route": route.name,
                "path": pattern,
                "match": "exact" if route.exact else "prefix",
                "hosts": route.hosts,
                "methods": sorted(route.methods) if route.methods else [],
                "headers": dict(route.headers),
                "upstream": route.config.upstream,
            }
            for _, pattern, _, _, route, _ in self.entries
        ]
