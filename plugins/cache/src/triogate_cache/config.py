"""Settings of the cache plugin: the table under ``[plugins.cache]`` or ``[routes.<r>.plugins.cache]``."""

from __future__ import annotations

from typing import Literal

import attrs
from triogate import fields, setting
from triogate_redis import RedisConfig

__all__ = ["DEFAULT_STATUSES", "CacheConfig"]

#: statuses stored by default: final, understood, and not partial (206) or conditional (304)
DEFAULT_STATUSES = [200, 203, 204, 300, 301, 302, 307, 308, 404, 405, 410, 414, 501]


@attrs.define(frozen=True)
class CacheConfig:
    store: Literal["memory", "redis"] = setting(
        "memory", description="where responses are kept: memory (per process) or redis (shared by every gateway)")
    memory_size: int = setting(
        64 * 1024 * 1024, description="memory store: total bytes of stored responses per process (LRU eviction)")
    max_object_size: int = setting(
        1024 * 1024, description="largest body stored; larger responses stream through uncached, never buffered")
    methods: list[str] = setting(
        factory=lambda: ["GET", "HEAD"], description="methods answered from the cache (HEAD uses a stored GET)")
    statuses: list[int] = setting(
        factory=lambda: list(DEFAULT_STATUSES), description="response statuses that may be stored")
    default_ttl: float = setting(
        0.0, description="heuristic freshness (s) for responses with no explicit freshness and no Last-Modified,"
                         " only where RFC 9111 allows heuristics (heuristically cacheable status or public); 0 = off")
    heuristic_fraction: float = setting(
        0.1, description="heuristic freshness from Last-Modified: this fraction of (Date - Last-Modified); 0 = off")
    heuristic_max: float = setting(86400.0, description="upper bound (s) of any heuristic freshness")
    heuristic_with_cookies: bool = setting(
        False, description="also give heuristic freshness to responses to requests with Cookie; off: those are stored"
                           " only with explicit freshness (s-maxage, max-age, Expires)")
    stale_retention: float = setting(
        3600.0, description="how long (s) a stale response is kept for revalidation, max-stale and stale-if-error")
    stale_if_error: float = setting(
        0.0, description="stale-if-error (s) for responses that do not set it (RFC 5861); never past must-revalidate")
    key_consumer: bool = setting(
        False, description="add the authenticated consumer to the cache key: each consumer has its own entries")
    key_headers: list[str] = setting(
        factory=list, description="request headers whose values are part of the cache key",
        validator=fields.header_names)
    key_query: list[str] = setting(
        factory=list, description="when set, only these query parameters are part of the key (others ignored)")
    ignore_query: list[str] = setting(
        factory=list, description="query parameters left out of the cache key (e.g. utm_source)")
    coalesce: bool = setting(
        True, description="concurrent misses for one key make one upstream request; the others wait for it")
    coalesce_timeout: float = setting(
        5.0, description="how long (s) a coalesced request waits for the first one before going upstream itself")
    uncacheable_ttl: float = setting(
        30.0, description="after an answer that could not be stored (no-store, private, an uncacheable status), "
        "misses for that key skip coalescing for this long (s): Varnish's hit-for-miss; 0 never skips")
    store_set_cookie: bool = setting(
        False, description="store responses that carry Set-Cookie (off: they are never shared)")
    cache_name: str = setting("triogate", description="this cache's name in the Cache-Status header (RFC 9211)")
    x_cache_status: bool = setting(
        False, description="also send a Kong-style X-Cache-Status: Hit, Miss, Refresh, Bypass or Stale")
    expose_key: bool = setting(False, description="add the cache key to Cache-Status (key=...), e.g. to purge it")
    redis: RedisConfig = setting(
        factory=RedisConfig, description="redis store: the Redis deployment (keys under <key_prefix>cache:)")

    def __attrs_post_init__(self) -> None:
        bad = [m for m in self.methods if m not in ("GET", "HEAD")]
        if bad:
            raise ValueError(f"methods: only GET and HEAD are cacheable, got {bad}")
        if "GET" not in self.methods:
            raise ValueError("methods: must include GET (HEAD is answered from stored GET responses)")
        bad_status = [s for s in self.statuses if not 200 <= s <= 599 or s in (206, 304)]
        if bad_status:
            raise ValueError(f"statuses: cannot store {bad_status} (final statuses except 206 and 304)")
        for name in ("memory_size", "max_object_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.store == "memory" and self.max_object_size > self.memory_size:
            raise ValueError("max_object_size: larger than memory_size")
        for name in ("default_ttl", "heuristic_max", "stale_retention", "stale_if_error", "coalesce_timeout",
                     "uncacheable_ttl"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        if not 0 <= self.heuristic_fraction <= 1:
            raise ValueError("heuristic_fraction: must be between 0 and 1")
        if self.key_query and self.ignore_query:
            raise ValueError("key_query and ignore_query: set one or the other")
        if not self.cache_name or any(c in self.cache_name for c in ' ";,='):
            raise ValueError(f"cache_name: must be a token, got {self.cache_name!r}")
        if "{" in self.redis.key_prefix or "}" in self.redis.key_prefix:
            raise ValueError("redis.key_prefix: must not contain braces (the cache uses them as Redis Cluster hash tags)")
