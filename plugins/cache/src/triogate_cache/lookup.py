"""Lookup, in ``transform``: find the stored response for a request, answer with it or prepare validation.

A fresh (or acceptably stale) stored response answers the request; a stale one with validators
sends it upstream with our conditions; a miss may wait for a concurrent one for the same key
(coalescing). A part of :class:`~triogate_cache.plugin.Cache`.
"""

from __future__ import annotations

import weakref
from typing import Any

import trio
from triogate import Body, Context, Headers, Request, Response

from . import policy
from .directives import CacheControl, delta_seconds
from .entry import Entry, Record
from .state import CONDITIONAL, STATE, Flight, RequestState, log_store_error, variant_key

__all__ = ["Lookup"]


class Lookup:
    """The lookup side of :class:`~triogate_cache.plugin.Cache` (a mixin: the plugin has these attributes)."""

    config: Any
    shared: Any
    store: Any

    async def _get(self, key: str, st: RequestState) -> Record | None:
        try:
            if self.shared.pending_invalidations:  # writes the store missed while it was down
                await self.shared.replay_invalidations()
            return await self.store.get(key)
        except Exception as exc:  # noqa: BLE001 - a broken store is a miss, never a failed request
            log_store_error("read", exc)
            st.status.detail = "store-unavailable"
            st.store_down = True
            return None

    async def _find(self, ctx: Context, st: RequestState) -> tuple[Entry | None, str]:
        """The stored response selected for this request (RFC 9111 §4.1) and its key; else the miss kind."""
        record = await self._get(st.key, st)
        if record is None:
            return None, "uri-miss"
        if isinstance(record, Entry):
            return record, st.key
        key = variant_key(st.key, policy.selecting_values(ctx.request.headers, record.names))
        entry = await self._get(key, st)
        if not isinstance(entry, Entry):
            return None, "vary-miss"
        return entry, key

    async def _lookup(self, ctx: Context, st: RequestState, collapsed: bool = False) -> Response | None:
        req = ctx.request
        entry, where = await self._find(ctx, st)
        if entry is None:
            st.status.fwd = where
            if "only-if-cached" in st.req_cc:
                st.status.fwd = "miss"
                st.status.detail = "only-if-cached"
                return self._finish(ctx, st, ctx.problem(504, "not in cache and the request said only-if-cached"))
            return None
        st.entry = entry
        st.variant = where
        now = self.store.now()
        age = entry.age(now)
        left = entry.freshness - age
        verdict = self._usable(entry, age, left, st.req_cc)
        if verdict in ("hit", "stale-ok", "swr"):
            st.status.hit = True
            st.status.ttl = entry.freshness - int(age)
            st.status.collapsed = collapsed
            if verdict == "swr":
                st.status.detail = "stale-while-revalidate"
                self._spawn_revalidation(ctx, st, entry)
            elif verdict == "stale-ok":
                st.status.detail = "max-stale"
            return self._finish(ctx, st, self._respond(req, entry, age, st))
        if "only-if-cached" in st.req_cc:
            st.status.fwd = verdict
            st.status.detail = "only-if-cached"
            return self._finish(ctx, st, ctx.problem(504, "no usable stored response and the request said"
                                                          " only-if-cached"))
        # validate: our validators replace the client's (its conditions are evaluated on the result)
        st.status.fwd = verdict
        st.client_cond = [(n, v) for n, v in req.headers.raw if n in (b"if-none-match", b"if-modified-since")]
        if entry.has_validators:
            req.headers.remove(*CONDITIONAL)
            if entry.etag is not None:
                req.headers.add("if-none-match", entry.etag)
            if entry.last_modified is not None:
                req.headers.add("if-modified-since", entry.last_modified)
            st.validating = True
        return None

    @staticmethod
    def _usable(entry: Entry, age: float, left: float, req_cc: CacheControl) -> str:
        """hit, stale-ok (max-stale), swr, or why validation is needed: "request" / "stale" (RFC 9211 fwd)."""
        if entry.no_cache:
            return "stale"
        if "no-cache" in req_cc:
            return "request"
        immutable = "immutable" in entry.cc
        max_age = delta_seconds(req_cc, "max-age")
        if left > 0:
            if max_age is not None and age > max_age and not immutable:
                return "request"
            min_fresh = delta_seconds(req_cc, "min-fresh")
            if min_fresh is not None and left < min_fresh:
                return "request"
            return "hit"
        if entry.must_revalidate or (max_age is not None and age > max_age):
            return "stale"
        if "max-stale" in req_cc:
            ms = req_cc["max-stale"]
            if ms is None or (ms.isdigit() and -left <= int(ms)):
                return "stale-ok"
        swr = entry.extension("stale-while-revalidate")
        if swr and -left <= swr:
            return "swr"
        return "stale"

    def _respond(self, req: Request, entry: Entry, age: float, st: RequestState,
                 client_cond: list[tuple[bytes, bytes]] | None = None) -> Response:
        """A response from the store: 304 when the client's own conditions hold, else the stored one."""
        cond = Headers.from_raw(client_cond) if client_cond is not None else req.headers
        raw = [(n, v) for n, v in entry.headers]
        raw.append((b"age", str(int(age)).encode()))
        if entry.status == 200 and self._not_modified(cond, entry):
            keep = {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary", b"last-modified",
                    b"age", b"via", b"cache-status"}
            return Response(304, Headers.from_raw([(n, v) for n, v in raw if n in keep]), Body(b""))
        if entry.status != 204:
            raw.append((b"content-length", str(len(entry.body)).encode()))
        return Response(entry.status, Headers.from_raw(raw), Body(entry.body))

    @staticmethod
    def _not_modified(cond: Headers, entry: Entry) -> bool:
        inm = cond.get_list("if-none-match")
        if inm:
            return policy.etag_matches(inm, entry.etag)
        ims = cond.get("if-modified-since")
        return ims is not None and policy.not_modified_since(ims, entry.last_modified)

    def _finish(self, ctx: Context, st: RequestState, resp: Response) -> Response:
        st.status.apply(resp.headers, self.config.x_cache_status)
        ctx.state[STATE] = None  # answered here: post_response leaves it alone
        ctx.log_extra["cache"] = st.status.short
        return resp

    async def _coalesce(self, ctx: Context, st: RequestState) -> Response | None:
        shared = self.shared
        flight = shared.flights.get(st.key)
        if flight is None:
            flight = shared.flights[st.key] = Flight()
            st.flight = flight
            # if this request dies before post_response (client gone, cancelled), free the waiters
            st.finalizer = weakref.finalize(st, shared.release, st.key, flight)
            return None
        with trio.move_on_after(self.config.coalesce_timeout):
            await flight.done.wait()
        found = await self._lookup(ctx, st, collapsed=True)
        if found is None:
            st.status.collapsed = False
        return found
