"""The ``Cache-Status`` response header (RFC 9211) and the Kong-style ``X-Cache-Status``."""

from __future__ import annotations

import math

from triogate import Headers

__all__ = ["CacheStatus"]


class CacheStatus:
    """This cache's member of ``Cache-Status`` for one response."""

    __slots__ = (
        "collapsed",
        "detail",
        "fwd",
        "fwd_status",
        "hit",
        "key",
        "name",
        "refreshed",
        "served_stale",
        "stored",
        "ttl",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.hit = False
        self.fwd: str | None = None  # bypass, uri-miss, vary-miss, miss, stale, request
        self.fwd_status: int | None = None
        self.stored = False
        self.ttl: float | None = None
        self.collapsed = False
        self.key: str | None = None
        self.detail: str | None = None
        self.refreshed = False
        self.served_stale = False

    def __str__(self) -> str:
        parts = [self.name]
        if self.hit:
            parts.append("hit")
        elif self.fwd:
            parts.append(f"fwd={self.fwd}")
            if self.fwd_status is not None:
                parts.append(f"fwd-status={self.fwd_status}")
        if self.stored:
            parts.append("stored")
        if self.collapsed:
            parts.append("collapsed")
        if self.ttl is not None and (self.hit or self.stored or self.served_stale):
            parts.append(f"ttl={math.floor(self.ttl)}")
        if self.key is not None:
            parts.append('key="' + self.key.replace("\\", "\\\\").replace('"', '\\"') + '"')
        if self.detail:
            parts.append(f"detail={self.detail}")
        return "; ".join(parts)

    @property
    def short(self) -> str:
        """Kong's vocabulary: Hit, Miss, Refresh, Stale or Bypass."""
        if self.served_stale or (self.hit and self.ttl is not None and self.ttl <= 0):
            return "Stale"
        if self.hit:
            return "Hit"
        if self.refreshed:
            return "Refresh"
        if self.fwd == "bypass":
            return "Bypass"
        return "Miss"

    def apply(self, headers: Headers, x_cache_status: bool) -> None:
        prior = headers.get_all("cache-status")  # caches nearer the origin come first (RFC 9211 §2)
        headers.set("cache-status", ", ".join([*prior, str(self)]) if prior else str(self))
        if x_cache_status:
            headers.set("x-cache-status", self.short)
