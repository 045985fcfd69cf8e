"""stale-while-revalidate: refresh a stale stored response in the background, after answering with it.

A part of :class:`~triogate_cache.plugin.Cache`.
"""

from __future__ import annotations

import time
from typing import Any

import trio
from triogate import Context, Request, Response

from . import policy
from .directives import parse_cache_control
from .entry import Entry
from .state import BG_TIMEOUT, CONDITIONAL, RequestState, log

__all__ = ["Revalidation"]


class Revalidation:
    """The background revalidation of :class:`~triogate_cache.plugin.Cache` (a mixin)."""

    config: Any
    gateway: Any
    shared: Any

    def _spawn_revalidation(self, ctx: Context, st: RequestState, entry: Entry) -> None:
        nursery = self.gateway.nursery
        if nursery is None or st.variant in self.shared.revalidating:
            return
        self.shared.revalidating.add(st.variant)
        req = ctx.request
        headers = req.headers.copy()
        headers.remove(*CONDITIONAL, "cache-control", "pragma")
        if entry.etag is not None:
            headers.add("if-none-match", entry.etag)
        if entry.last_modified is not None:
            headers.add("if-modified-since", entry.last_modified)
        copy = Request("GET", req.path, req.query, headers, http_version=req.http_version, scheme=req.scheme,
                       client=req.client, raw_path=req.raw_path)
        bg = Context(copy, ctx.gateway, ctx.request_id, ctx.client_ip)
        bg.route, bg.params, bg.rest, bg.principal = ctx.route, ctx.params, ctx.rest, ctx.principal
        bst = RequestState(self)
        bst.group, bst.key, bst.variant, bst.entry = st.group, st.key, st.variant, entry
        bst.authorized, bst.validating = st.authorized, entry.has_validators
        bst.heuristics = st.heuristics
        nursery.start_soon(self._revalidate, bg, bst)

    async def _revalidate(self, ctx: Context, st: RequestState) -> None:
        try:
            with trio.move_on_after(BG_TIMEOUT):
                st.request_time = time.time()
                resp = await ctx.gateway.forward(ctx)
                try:
                    await self._revalidated(ctx, st, resp)
                finally:
                    await resp.body.aclose()
        except Exception as exc:  # noqa: BLE001 - background work: log, keep the stale entry
            log.warning("cache background revalidation of %s failed: %s: %s", st.key, type(exc).__name__, exc)
        finally:
            self.shared.revalidating.discard(st.variant)

    async def _revalidated(self, ctx: Context, st: RequestState, resp: Response) -> None:
        assert st.entry is not None
        if resp.status == 304 and st.validating:
            await self._refresh(st, st.entry, resp)
            return
        if resp.status in policy.ERROR_STATUSES:
            return
        cc = parse_cache_control(resp.headers.get_all("cache-control"))
        vary = policy.vary_names(resp.headers)
        entry = self._entry_for(ctx, st, resp.status, resp.headers, cc, vary)
        if entry is None:
            await self._delete(st.variant)
            return
        try:
            entry.body = await resp.body.read(self.config.max_object_size)
        except Exception:  # noqa: BLE001 - too large or broken: not stored
            await self._delete(st.variant)
            return
        await self._put(st.group, st.key, entry, vary)
