"""What the cache's parts share: the per-process store and in-flight misses, and one request's state.

:class:`Shared` lives per process and store (across config reloads); :class:`RequestState` is
what the lookup decided for one request (``ctx.state["cache"]``), read again when the response
comes back and by the background revalidation.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import trio

from .directives import CacheControl
from .entry import Entry
from .status import CacheStatus

__all__ = [
    "BG_TIMEOUT", "CONDITIONAL", "PENDING_INVALIDATIONS_MAX", "STATE", "UNCACHEABLE_MAX", "Flight", "RequestState", "Shared", "log_store_error",
    "variant_key",
]

log = logging.getLogger("triogate.cache")

STATE = "cache"
CONDITIONAL = ("if-none-match", "if-modified-since")
BG_TIMEOUT = 30.0


class Flight:
    """One upstream request that concurrent misses for the same key wait for."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = trio.Event()


#: keys remembered as uncacheable, per process (oldest forgotten first beyond it)
UNCACHEABLE_MAX = 10_000
#: URI groups whose invalidation is kept for a replay while the store is unavailable (beyond: the oldest go)
PENDING_INVALIDATIONS_MAX = 10_000


class Shared:
    """Per process and store: the store, the in-flight misses and background revalidations."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.flights: dict[str, Flight] = {}
        self.revalidating: set[str] = set()
        #: key -> until when (trio time) its misses do not coalesce: its last answer was not storable,
        #: so waiting for another request's answer only adds that request's latency to this one
        self.uncacheable: dict[str, float] = {}
        #: URI groups an unsafe method should have invalidated while the store was unavailable. The
        #: entries may still be there when it is back (a promoted replica, a restart with persistence),
        #: so the next lookup replays these first: a stale answer is never served for a write it missed
        self.pending_invalidations: dict[str, None] = {}
        self.replaying = trio.Lock()

    def remember_invalidation(self, group: str) -> None:
        pending = self.pending_invalidations
        pending.pop(group, None)
        if len(pending) >= PENDING_INVALIDATIONS_MAX:
            dropped = next(iter(pending))
            del pending[dropped]
            log.warning("cache: more than %d invalidations waiting for the store; %s is dropped",
                        PENDING_INVALIDATIONS_MAX, dropped)
        pending[group] = None

    async def replay_invalidations(self) -> None:
        """Invalidate what unsafe methods could not while the store was down; raises while it still is
        (the caller's lookup is then a miss), so nothing stored before those writes is served."""
        async with self.replaying:  # one replay at a time; the others wait for it, then find nothing left
            while self.pending_invalidations:
                group = next(iter(self.pending_invalidations))
                await self.store.invalidate(group)
                self.pending_invalidations.pop(group, None)

    def remember_uncacheable(self, key: str, until: float) -> None:
        memo = self.uncacheable
        memo.pop(key, None)
        if len(memo) >= UNCACHEABLE_MAX:
            del memo[next(iter(memo))]
        memo[key] = until

    def is_uncacheable(self, key: str, now: float) -> bool:
        until = self.uncacheable.get(key)
        if until is None:
            return False
        if until > now:
            return True
        del self.uncacheable[key]
        return False

    def release(self, key: str, flight: Flight) -> None:
        if self.flights.get(key) is flight:
            del self.flights[key]
        flight.done.set()


class RequestState:
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

    def __init__(self, owner: Any) -> None:
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


def log_store_error(what: str, exc: BaseException) -> None:
    """An unavailable store is logged by its client when it goes down; anything else is a warning."""
    if type(exc).__name__ == "RedisUnavailable":
        log.debug("cache store %s skipped: %s", what, exc)
    else:
        log.warning("cache store %s failed (%s): %s", what, type(exc).__name__, exc)


def variant_key(key: str, values: dict[str, str]) -> str:
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:24]
    return f"{key}|~{digest}"
