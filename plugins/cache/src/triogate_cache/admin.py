"""Admin API endpoints (``[admin] listen``): purge stored responses, and store statistics.

``POST /cache/purge`` with a JSON body, exactly one of::

    {"key": "api.example.com/api/users/1|users"}   one cache key (all its Vary variants)
    {"prefix": "api.example.com/api/users/"}       every key starting with it ("" = everything)
    {"host": "api.example.com", "path": "/api/users/1"}   everything stored for that URI (any query,
                                                        route, consumer) - what an unsafe method does

answers ``{"purged": n}``. ``GET /cache/stats`` lists each store. Every cache instance's
store is reached once (instances with the same store settings share one).
"""

from __future__ import annotations

import json
from typing import Any

from triogate import AdminRoute, Request, Response, problem

__all__ = ["cache_admin_routes"]

_MAX_BODY = 64 * 1024


def _caches(gateway: Any, cache_class: type) -> list[Any]:
    seen: set[int] = set()
    out = []
    for p in gateway.instances(cache_class):
        if id(p.shared) not in seen:
            seen.add(id(p.shared))
            out.append(p)
    return out


def cache_admin_routes(gateway: Any, cache_class: type) -> list[AdminRoute]:
    """The routes over every instance of ``cache_class`` (the plugin class) the gateway runs."""

    async def purge(request: Request) -> Response | dict[str, int]:
        try:
            body = json.loads(await request.body.read(_MAX_BODY) or b"{}")
        except (ValueError, UnicodeDecodeError):
            return problem(400, "expected a JSON object")
        if not isinstance(body, dict):
            return problem(400, "expected a JSON object")
        keys = set(body)
        if keys == {"key"} and isinstance(body["key"], str):
            op = lambda c: c.purge(body["key"])
        elif keys == {"prefix"} and isinstance(body["prefix"], str):
            op = lambda c: c.purge_prefix(body["prefix"])
        elif keys == {"host", "path"} and all(isinstance(body[k], str) for k in keys) and body["path"][:1] == "/":
            op = lambda c: c.invalidate(body["host"], body["path"])
        else:
            return problem(400, 'expected exactly one of {"key": ...}, {"prefix": ...} or {"host": ..., "path": "/..."}')
        purged = 0
        for cache in _caches(gateway, cache_class):
            try:
                purged += await op(cache)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down: say so
                return problem(503, f"cache store unavailable: {type(exc).__name__}: {exc}")
        return {"purged": purged}

    async def stats(request: Request) -> list[dict[str, Any]]:
        out = []
        for cache in _caches(gateway, cache_class):
            store = cache.store
            item: dict[str, Any] = {"store": store.kind, "in_flight": len(cache.shared.flights)}
            if store.kind == "memory":
                item.update(entries=len(store), bytes=store.bytes, max_bytes=store.max_bytes, **store.stats)
            else:
                item.update(redis=store.client.state, prefix=store.prefix)
            out.append(item)
        return out

    return [
        AdminRoute("POST", "/cache/purge", purge, "purge stored responses by key, key prefix or URI"),
        AdminRoute("GET", "/cache/stats", stats, "cache stores: entries, bytes, evictions, Redis state"),
    ]
