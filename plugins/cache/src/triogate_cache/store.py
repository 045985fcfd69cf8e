"""Storing, in ``post_response``: what may be stored, the tee that copies a body while it streams,
refreshing a stored response from a 304, deleting and invalidating after unsafe methods.

A part of :class:`~triogate_cache.plugin.Cache`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import trio
from triogate import Body, Context, Headers, Response

from . import policy
from .directives import CacheControl, parse_cache_control
from .entry import Entry, VaryIndex
from .keys import uri_group
from .state import BG_TIMEOUT, Flight, RequestState, log_store_error, variant_key

__all__ = ["Storing"]


def _authority_of(u: Any, scheme: str) -> str | None:
    """A URL's authority the way ``Request.authority`` has it (no default port, no trailing dot)."""
    try:
        port = u.port
    except ValueError:
        return None
    host = (u.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == {"http": 80, "https": 443}.get(u.scheme or scheme):
        return host
    return f"{host}:{port}"


class Storing:
    """The storing side of :class:`~triogate_cache.plugin.Cache` (a mixin: the plugin has these attributes)."""

    config: Any
    shared: Any
    store: Any
    statuses: frozenset[int]

    def _release(self, st: RequestState) -> None:
        flight = self._take_flight(st)
        if flight is not None:
            self.shared.release(st.key, flight)

    @staticmethod
    def _take_flight(st: RequestState) -> Flight | None:
        """Hand the request's flight to whoever finishes storing (the body stream); the state may go."""
        flight, st.flight = st.flight, None
        if st.finalizer is not None:
            st.finalizer.detach()
            st.finalizer = None
        return flight

    async def _delete(self, key: str) -> None:
        try:
            await self.store.delete(key)
        except Exception as exc:  # noqa: BLE001
            log_store_error("delete", exc)

    async def _invalidate_after(self, ctx: Context, response: Response) -> None:
        """RFC 9111 §4.4: the target URI, and same-origin Location / Content-Location."""
        from urllib.parse import urlsplit

        req = ctx.request
        groups = {uri_group(req.authority, req.path)}
        for name in ("location", "content-location"):
            value = response.headers.get(name)
            if not value:
                continue
            u = urlsplit(value)
            if u.scheme and u.scheme != req.scheme:
                continue
            if u.netloc and _authority_of(u, req.scheme) != req.authority:
                continue
            if u.path.startswith("/"):
                groups.add(uri_group(req.authority, u.path))
        for g in groups:
            try:
                await self.store.invalidate(g)
            except Exception as exc:  # noqa: BLE001
                log_store_error("invalidation", exc)
                self.shared.remember_invalidation(g)  # replayed before the next lookup

    def _entry_for(self, ctx: Context, st: RequestState, status: int, headers: Headers, cc: CacheControl,
                   vary: tuple[str, ...]) -> Entry | None:
        """The entry to store for a response (body still empty), or None with ``st.status.detail`` set."""
        cfg = self.config
        why = policy.why_not_storable(status, cc, st.req_cc, headers, statuses=self.statuses,
                                      authorized=st.authorized, allow_set_cookie=cfg.store_set_cookie)
        if why is not None:
            st.status.detail = why
            return None
        response_time = time.time()
        lifetime = policy.freshness_lifetime(status, cc, headers, response_time,
                                             heuristic_fraction=cfg.heuristic_fraction,
                                             heuristic_max=cfg.heuristic_max, default_ttl=cfg.default_ttl,
                                             heuristics=st.heuristics)
        age = policy.initial_age(headers, st.request_time, response_time)
        raw = policy.strip_fields(headers.raw, cc)
        if "date" not in headers:
            from .directives import format_http_date

            raw.append((b"date", format_http_date(response_time).encode()))
        entry = Entry(status, raw, b"", st.request_time, response_time, age, self.store.now(), lifetime,
                      policy.selecting_values(ctx.request.headers, vary))
        if lifetime <= age and not entry.has_validators and not (
                entry.extension("stale-while-revalidate") or entry.extension("stale-if-error")
                or cfg.stale_if_error):
            st.status.detail = "not-fresh" if st.heuristics else "cookie"
            return None
        return entry

    def _ttl(self, entry: Entry) -> float:
        extra = max(entry.extension("stale-while-revalidate"), entry.extension("stale-if-error"),
                    self.config.stale_if_error, self.config.stale_retention)
        return max(0.0, entry.freshness - entry.initial_age) + extra

    async def _start_storing(self, ctx: Context, st: RequestState, response: Response) -> bool:
        req = ctx.request
        if req.method != "GET":
            st.status.detail = st.status.detail or "head"
            return False
        if response.upgrade is not None or st.store_down:
            return False
        cc = parse_cache_control(response.headers.get_all("cache-control"))
        vary = policy.vary_names(response.headers)
        entry = self._entry_for(ctx, st, response.status, response.headers, cc, vary)
        if entry is None:
            return False
        limit = self.config.max_object_size
        body = response.body
        if body.length is not None and body.length > limit:
            st.status.detail = "too-large"
            return False
        # "stored" is only promised when the length is known to fit (chunked bodies may still grow past it)
        st.status.stored = body.length is not None
        st.status.ttl = entry.freshness - int(entry.initial_age)
        if body.is_buffered:
            entry.body = body.data or b""
            if len(entry.body) > limit:
                st.status.stored = False
                st.status.detail = "too-large"
                return False
            await self._put_now(st, entry, vary)
            return True
        response.body = self._tee(st, entry, vary, body, limit)
        return True

    async def _put_now(self, st: RequestState, entry: Entry, vary: tuple[str, ...]) -> None:
        """Store a body that is already whole before the client gets it, like the tee does for the
        last byte of a streamed one: whoever sees the response can rely on it being stored."""
        key, group, flight = st.key, st.group, self._take_flight(st)
        try:
            with trio.move_on_after(BG_TIMEOUT):
                await self._put(group, key, entry, vary)
        finally:
            if flight is not None:
                self.shared.release(key, flight)

    def _tee(self, st: RequestState, entry: Entry, vary: tuple[str, ...], body: Body, limit: int) -> Body:
        """The client's body, copied into the store while under ``limit``; nothing is held past it."""
        key, group = st.key, st.group
        flight = self._take_flight(st)
        expected = body.length
        shared = self.shared
        plugin = self

        async def save(parts: list[bytes]) -> None:
            entry.body = b"".join(parts)
            with trio.move_on_after(BG_TIMEOUT):
                await plugin._put(group, key, entry, vary)
            if flight is not None:
                shared.release(key, flight)

        async def stream() -> AsyncIterator[bytes]:
            parts: list[bytes] | None = []
            size = 0
            async for chunk in body:
                if parts is not None:
                    size += len(chunk)
                    if size > limit:
                        parts = None  # oversized: stop copying, keep streaming
                    else:
                        parts.append(chunk)
                        if size == expected:  # complete: stored before the client sees the last byte
                            await save(parts)
                            parts = None
                yield chunk
            if parts is not None and expected is None:
                await save(parts)
            if flight is not None:
                shared.release(key, flight)

        async def on_close() -> None:
            await body.aclose()
            if flight is not None:
                shared.release(key, flight)

        return Body(stream(), expected, on_close=on_close)

    async def _put(self, group: str, key: str, entry: Entry, vary: tuple[str, ...]) -> None:
        ttl = self._ttl(entry)
        try:
            if vary:
                await self.store.put(group, key, VaryIndex(vary), ttl)
                await self.store.put(group, variant_key(key, entry.vary), entry, ttl)
            else:
                await self.store.put(group, key, entry, ttl)
        except Exception as exc:  # noqa: BLE001 - a broken store only means "not stored"
            log_store_error("write", exc)

    async def _refresh(self, st: RequestState, entry: Entry, response: Response) -> Entry | None:
        """Freshen a stored response with a 304's header fields (RFC 9111 §4.3.4) and store it again."""
        new_etag = response.headers.get("etag")
        if new_etag is not None and entry.etag is not None and not policy.etag_matches([new_etag], entry.etag):
            return None
        update = {n for n, _ in response.headers.raw} - policy.UNSTORED_FIELDS
        raw = [(n, v) for n, v in entry.headers if n not in update]
        raw += [(n, v) for n, v in response.headers.raw if n in update]
        headers = Headers.from_raw(raw)
        cc = parse_cache_control(headers.get_all("cache-control"))
        cfg = self.config
        response_time = time.time()
        if "date" not in update:
            from .directives import format_http_date

            headers.set("date", format_http_date(response_time))
        refreshed = Entry(
            entry.status, policy.strip_fields(headers.raw, cc), entry.body, st.request_time, response_time,
            policy.initial_age(response.headers, st.request_time, response_time), self.store.now(),
            policy.freshness_lifetime(entry.status, cc, headers, response_time,
                                      heuristic_fraction=cfg.heuristic_fraction,
                                      heuristic_max=cfg.heuristic_max, default_ttl=cfg.default_ttl,
                                      heuristics=st.heuristics),
            entry.vary,
        )
        if "no-store" in cc:
            await self._delete(st.variant)
            return refreshed
        try:
            await self.store.put(st.group, st.variant, refreshed, self._ttl(refreshed))
        except Exception as exc:  # noqa: BLE001
            log_store_error("write", exc)
        return refreshed
