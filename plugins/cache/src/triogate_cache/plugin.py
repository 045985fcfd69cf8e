"""The cache plugin: lookup in ``transform``, store (tee) and ``Cache-Status`` in ``post_response``.

A hit is answered in ``transform`` with the stored body; everything else goes upstream
and comes back through ``post_response``, where a storable response's body is wrapped
so that it is copied into the store *while it streams* to the client, only as long as
it stays under ``max_object_size``. Nothing is ever buffered for a response that is not
stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import trio
from triogate import Body, Context, Headers, Plugin, Request, Response, hookimpl

from . import policy
from .config import CacheConfig
from .directives import CacheControl, delta_seconds, parse_cache_control, request_directives
from .entry import Entry, Record, VaryIndex
from .keys import KeyBuilder, uri_group
from .memory import MemoryStore
from .status import CacheStatus

__all__ = ["Cache"]

log = logging.getLogger("triogate.cache")

STATE = "cache"
UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
CONDITIONAL = ("if-none-match", "if-modified-since")
_BG_TIMEOUT = 30.0


class Flight:
    """One upstream request that concurrent misses for the same key wait for."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = trio.Event()


class Shared:
    """Per process and store: the store, the in-flight misses and background revalidations."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.flights: dict[str, Flight] = {}
        self.revalidating: set[str] = set()

    def release(self, key: str, flight: Flight) -> None:
        if self.flights.get(key) is flight:
            del self.flights[key]
        flight.done.set()


class _State:
    """What the lookup decided for one request (``ctx.state["cache"]``)."""

    __slots__ = (
        "__weakref__",
        "authorized",
        "client_cond",
        "heuristics",
        "entry",
        "finalizer",
        "flight",
        "group",
        "key",
        "owner",
        "req_cc",
        "request_time",
        "status",
        "store_down",
        "validating",
        "variant",
    )

    def __init__(self, owner: Cache) -> None:
        self.owner = owner
        self.group = ""
        self.key = ""
        self.variant = ""  # where ``entry`` was found (the primary key, or a variant key under it)
        self.req_cc: CacheControl = {}
        self.entry: Entry | None = None
        self.status = CacheStatus(owner.config.cache_name)
        self.validating = False  # our validators went upstream
        self.client_cond: list[tuple[bytes, bytes]] = []
        self.flight: Flight | None = None
        self.finalizer: Any = None
        self.request_time = 0.0
        self.authorized = False
        self.heuristics = True  # heuristic freshness allowed (off for requests with cookies, by default)
        self.store_down = False


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


def _log_store_error(what: str, exc: BaseException) -> None:
    """An unavailable store is logged by its client when it goes down; anything else is a warning."""
    if type(exc).__name__ == "RedisUnavailable":
        log.debug("cache store %s skipped: %s", what, exc)
    else:
        log.warning("cache store %s failed (%s): %s", what, type(exc).__name__, exc)


def variant_key(key: str, values: dict[str, str]) -> str:
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:24]
    return f"{key}|~{digest}"


class Cache(Plugin):
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
        from .admin import cache_admin_routes

        return cache_admin_routes(gateway)

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
        st = _State(self)
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
        if st.entry is None and self.config.coalesce and req.method == "GET" and "no-store" not in st.req_cc:
            return await self._coalesce(ctx, st)
        return None

    async def _get(self, key: str, st: _State) -> Record | None:
        try:
            return await self.store.get(key)
        except Exception as exc:  # noqa: BLE001 - a broken store is a miss, never a failed request
            _log_store_error("read", exc)
            st.status.detail = "store-unavailable"
            st.store_down = True
            return None

    async def _find(self, ctx: Context, st: _State) -> tuple[Entry | None, str]:
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

    async def _lookup(self, ctx: Context, st: _State, collapsed: bool = False) -> Response | None:
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

    def _respond(self, req: Request, entry: Entry, age: float, st: _State,
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

    def _finish(self, ctx: Context, st: _State, resp: Response) -> Response:
        st.status.apply(resp.headers, self.config.x_cache_status)
        ctx.state[STATE] = None  # answered here: post_response leaves it alone
        ctx.log_extra["cache"] = st.status.short
        return resp

    # ------------------------------------------------------------------ coalescing

    async def _coalesce(self, ctx: Context, st: _State) -> Response | None:
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

    def _release(self, st: _State) -> None:
        flight = self._take_flight(st)
        if flight is not None:
            self.shared.release(st.key, flight)

    @staticmethod
    def _take_flight(st: _State) -> Flight | None:
        """Hand the request's flight to whoever finishes storing (the body stream); the state may go."""
        flight, st.flight = st.flight, None
        if st.finalizer is not None:
            st.finalizer.detach()
            st.finalizer = None
        return flight

    # ------------------------------------------------------------------ responses

    @hookimpl
    async def post_response(self, ctx: Context, response: Response) -> Response | None:
        st = ctx.state.get(STATE)
        if not isinstance(st, _State) or st.owner is not self:
            return None
        ctx.state[STATE] = None
        try:
            return await self._after(ctx, st, response)
        finally:
            ctx.log_extra["cache"] = st.status.short

    async def _after(self, ctx: Context, st: _State, response: Response) -> Response | None:
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
        if not stored:
            self._release(st)
            if entry is not None and status not in policy.ERROR_STATUSES and status != 304:
                await self._delete(st.variant)  # replaced by a response we may not keep
        st.status.apply(response.headers, self.config.x_cache_status)
        return None

    def _stale_if_error(self, entry: Entry, st: _State) -> bool:
        if entry.must_revalidate or entry.no_cache:
            return False
        window = max(entry.extension("stale-if-error"), self.config.stale_if_error)
        req_sie = st.req_cc.get("stale-if-error")
        if req_sie is not None and req_sie.isdigit():
            window = max(window, float(req_sie))
        stale_for = entry.age(self.store.now()) - entry.freshness
        return window > 0 and stale_for <= window

    async def _delete(self, key: str) -> None:
        try:
            await self.store.delete(key)
        except Exception as exc:  # noqa: BLE001
            _log_store_error("delete", exc)

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
                _log_store_error("invalidation", exc)

    # ------------------------------------------------------------------ storing

    def _entry_for(self, ctx: Context, st: _State, status: int, headers: Headers, cc: CacheControl,
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

    async def _start_storing(self, ctx: Context, st: _State, response: Response) -> bool:
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

    async def _put_now(self, st: _State, entry: Entry, vary: tuple[str, ...]) -> None:
        """Store a body that is already whole before the client gets it, like the tee does for the
        last byte of a streamed one: whoever sees the response can rely on it being stored."""
        key, group, flight = st.key, st.group, self._take_flight(st)
        try:
            with trio.move_on_after(_BG_TIMEOUT):
                await self._put(group, key, entry, vary)
        finally:
            if flight is not None:
                self.shared.release(key, flight)

    def _tee(self, st: _State, entry: Entry, vary: tuple[str, ...], body: Body, limit: int) -> Body:
        """The client's body, copied into the store while under ``limit``; nothing is held past it."""
        key, group = st.key, st.group
        flight = self._take_flight(st)
        expected = body.length
        shared = self.shared
        plugin = self

        async def save(parts: list[bytes]) -> None:
            entry.body = b"".join(parts)
            with trio.move_on_after(_BG_TIMEOUT):
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
            _log_store_error("write", exc)

    async def _refresh(self, st: _State, entry: Entry, response: Response) -> Entry | None:
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
            _log_store_error("write", exc)
        return refreshed

    # ------------------------------------------------------------------ stale-while-revalidate

    def _spawn_revalidation(self, ctx: Context, st: _State, entry: Entry) -> None:
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
        bst = _State(self)
        bst.group, bst.key, bst.variant, bst.entry = st.group, st.key, st.variant, entry
        bst.authorized, bst.validating = st.authorized, entry.has_validators
        bst.heuristics = st.heuristics
        nursery.start_soon(self._revalidate, bg, bst)

    async def _revalidate(self, ctx: Context, st: _State) -> None:
        try:
            with trio.move_on_after(_BG_TIMEOUT):
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

    async def _revalidated(self, ctx: Context, st: _State, resp: Response) -> None:
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
