"""Cache keys: ``<authority><path>[?<query>]|<route>[|c=<consumer>][|h:<name>=<value>...]``.

``<authority>`` is the request's normalized authority (``Request.authority``: lower-case host,
no trailing dot, a port other than the scheme's default kept), the same value the upstream
is sent as ``Host``/``X-Forwarded-Host``: a request for ``example.com:6666`` can never fill
the entry that plain ``example.com`` requests are answered from.

The part before the first ``|`` is the URI *group* (authority and path, no query): every key
stored for it is invalidated together after an unsafe method (RFC 9111 §4.4), and a purge
by prefix such as ``api.example.com/api/users`` reaches all of them. Variable parts have
``|`` percent-encoded, so no request can forge another request's key.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from triogate import Context

from .config import CacheConfig

__all__ = ["KeyBuilder", "uri_group"]


def _esc(value: str) -> str:
    return value.replace("%", "%25").replace("|", "%7C") if ("|" in value or "%7C" in value) else value


def uri_group(host: str, path: str) -> str:
    return _esc(host.lower()) + _esc(path)


class KeyBuilder:
    """Precomputed from the config: what goes into a key besides the URI."""

    def __init__(self, config: CacheConfig, route: str | None) -> None:
        self.only = frozenset(config.key_query)
        self.ignore = frozenset(config.ignore_query)
        self.headers = tuple(sorted({h.lower() for h in config.key_headers}))
        self.consumer = config.key_consumer
        self.route = route

    def query(self, query: str) -> str:
        if not query or not (self.only or self.ignore):
            return query
        kept = []
        for part in query.split("&"):
            name = unquote_plus(part.split("=", 1)[0])
            if (self.only and name in self.only) or (self.ignore and name not in self.ignore):
                kept.append(part)
        return "&".join(kept)

    def build(self, ctx: Context) -> tuple[str, str]:
        """``(uri group, primary key)`` of the request."""
        req = ctx.request
        group = uri_group(req.authority, req.path)
        q = self.query(req.query)
        parts = [group + ("?" + _esc(q) if q else ""), _esc(ctx.route_name or self.route or "")]
        if self.consumer:
            p = ctx.principal
            who = p.id if p is not None and not p.anonymous else None
            parts.append("c=" + (_esc(who) if who else "-"))
        for name in self.headers:
            parts.append(f"h:{name}=" + _esc(",".join(req.headers.get_all(name))))
        return group, "|".join(parts)
