"""The cache plugin: lookup in ``transform``, store (tee) and ``Cache-Status`` in ``post_response``.

A hit is answered in ``transform`` with the stored body; everything else goes upstream
and comes back through ``post_response``, where a storable response's body is wrapped
so that it is copied into the store *while it streams* to the client, only as long as
it stays under ``max_object_size``. Nothing is ever buffered for a response that is not
stored.

The lookup (:mod:`.lookup`), the storing (:mod:`.store`) and the background revalidation
(:mod:`.revalidate`) are mixins of :class:`Cache`; :mod:`.state` holds what they share.
"""

from __future__ import annotations

import time
from typing import Any

import trio
from triogate import Context, Plugin, Response, hookimpl

from . import policy
from .admin import cache_admin_routes
from .config import CacheConfig
from .directives import request_directives
from .entry import Entry
from .keys import KeyBuilder, uri_group
from .lookup import Lookup
from .memory import MemoryStore
from .revalidate import Revalidation
from .state import STATE, RequestState, Shared
from .store import Storing

__all__ = ["Cache"]

UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})


class Cache(Lookup, Storing, Revalidation, Plugin):
    """RFC 9111 shared HTTP cache with memory and Redis stores."""

    priority = 100
    Config = CacheConfig

    def __init__(self, config: CacheConfig, gateway: Any, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.keys = KeyBuilder(config, route)
        self.methods = frozenset(config.methods)
        self.statuses = frozenset(config.statuses)
        self.shared: Shared  # set in startup, from the core's shared resources

    def request_header_names(self) -> list[tuple[str, str]]:
        return [(f"key_headers[{i}]", n) for i, n in enumerate(self.config.key_headers)]

    # ------------------------------------------------------------------ stores

    async def _shared(self, gateway: Any) -> Shared:
        """One memory store per process and size, kept across config reloads; one Redis store per Redis client."""
        cfg = self.config
        if cfg.store == "memory":
            return await gateway.shared(("triogate_cache", "memory", cfg.memory_size),
                                        lambda: Shared(MemoryStore(cfg.memory_size)), scope="process")
        from .redis_store import redis_shared

        return await redis_shared(gateway, cfg)

    @property
    def store(self) -> Any:
        return self.shared.store

    @hookimpl
    async def startup(self, gateway: Any) -> None:
        self.shared = await self._shared(gateway)

    @hookimpl
    def admin_routes(self, gateway: Any) -> list[Any]:
        """``POST /cache/purge`` and ``GET /cache/stats`` on the admin listener (see :mod:`.admin`)."""
        return cache_admin_routes(gateway, Cache)

    # ------------------------------------------------------------------ purge (documented API)

    async def purge(self, key: str) -> int:
        """Delete the responses stored under one cache key (all its Vary variants); returns how many."""
        n = int(await self.store.delete(key))
        return n + await self.store.purge(key + "|~")

    async def purge_prefix(self, prefix: str) -> int:
        """Delete every stored response whose key starts with ``prefix`` (``""``: everything)."""
        return await self.store.purge(prefix)

    async def invalidate(self, host: str, path: str) -> int:
        """Delete everything stored for ``host`` + ``path`` (any query, route, consumer or variant)."""
        return await self.store.invalidate(uri_group(host, path))

    # ------------------------------------------------------------------ lookup

    @hookimpl
    async def transform(self, ctx: Context) -> Response | None:
        req = ctx.request
        st = RequestState(self)
        ctx.state[STATE] = st
        st.request_time = time.time()
        if req.method not in self.methods:
            st.status.fwd = "bypass"
            st.status.detail = "method"
            return None
        if "range" in req.headers or "if-match" in req.headers or "if-unmodified-since" in req.headers:
            st.status.fwd = "bypass"
            st.status.detail = "conditional" if "range" not in req.headers else "range"
            return None
        st.req_cc = request_directives(req.headers)
        st.group, st.key = self.keys.build(ctx)
        p = ctx.principal
        st.authorized = "authorization" in req.headers or (p is not None and not p.anonymous)
        st.heuristics = self.config.heuristic_with_cookies or "cookie" not in req.headers
        if self.config.expose_key:
            st.status.key = st.key

        found = await self._lookup(ctx, st)
        if found is not None:
            return found
        if (st.entry is None and self.config.coalesce and req.method == "GET" and "no-store" not in st.req_cc
                and not self.shared.is_uncacheable(st.key, trio.current_time())):
            return await self._coalesce(ctx, st)
        return None

    # ------------------------------------------------------------------ responses

    @hookimpl
    async def post_response(self, ctx: Context, response: Response) -> Response | None:
        st = ctx.state.get(STATE)
        if not isinstance(st, RequestState) or st.owner is not self:
            return None
        ctx.state[STATE] = None
        try:
            return await self._after(ctx, st, response)
        finally:
            ctx.log_extra["cache"] = st.status.short

    async def _after(self, ctx: Context, st: RequestState, response: Response) -> Response | None:
        req = ctx.request
        status = response.status
        if req.method in UNSAFE:
            if 200 <= status < 400:
                await self._invalidate_after(ctx, response)
            st.status.apply(response.headers, self.config.x_cache_status)
            return None
        if st.status.fwd == "bypass":
            st.status.apply(response.headers, self.config.x_cache_status)
            return None
        st.status.fwd_status = status
        entry = st.entry
        if entry is not None and st.validating and status == 304:
            refreshed = await self._refresh(st, entry, response)
            if refreshed is not None:
                await response.body.aclose()
                age = refreshed.age(self.store.now())
                st.status.stored = True
                st.status.ttl = refreshed.freshness - int(age)
                st.status.refreshed = True
                out = self._respond(req, refreshed, age, st, st.client_cond)
                st.status.apply(out.headers, self.config.x_cache_status)
                return out
        if entry is not None and status in policy.ERROR_STATUSES and self._stale_if_error(entry, st):
            await response.body.aclose()
            age = entry.age(self.store.now())
            st.status.ttl = entry.freshness - int(age)
            st.status.detail = "stale-if-error"
            st.status.served_stale = True
            out = self._respond(req, entry, age, st, st.client_cond)
            st.status.apply(out.headers, self.config.x_cache_status)
            return out
        stored = await self._start_storing(ctx, st, response)
        if stored:
            self.shared.uncacheable.pop(st.key, None)
        else:
            if status < 500 and status != 304 and self.config.uncacheable_ttl > 0:
                self.shared.remember_uncacheable(st.key, trio.current_time() + self.config.uncacheable_ttl)
            self._release(st)
            if entry is not None and status not in policy.ERROR_STATUSES and status != 304:
                await self._delete(st.variant)  # replaced by a response we may not keep
        st.status.apply(response.headers, self.config.x_cache_status)
        return None

    def _stale_if_error(self, entry: Entry, st: RequestState) -> bool:
        if entry.must_revalidate or entry.no_cache:
            return False
        window = max(entry.extension("stale-if-error"), self.config.stale_if_error)
        req_sie = st.req_cc.get("stale-if-error")
        if req_sie is not None and req_sie.isdigit():
            window = max(window, float(req_sie))
        stale_for = entry.age(self.store.now()) - entry.freshness
        return window > 0 and stale_for <= window
