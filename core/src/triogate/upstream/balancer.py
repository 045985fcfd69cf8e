"""Targets and load-balancing strategies.

Every balancer picks among *available* targets (actively healthy, circuit not open,
weight > 0) and can exclude targets already tried by a retry.
"""

from __future__ import annotations

import bisect
import hashlib
import ssl
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from .health import CircuitBreaker
from .pool import ConnectionPool

__all__ = ["Target", "Balancer", "RoundRobin", "LeastConnections", "ConsistentHash", "make_balancer"]


class Target:
    __slots__ = ("url", "weight", "pool", "breaker", "healthy", "priority")

    def __init__(self, url: str, weight: int, pool: ConnectionPool, breaker: CircuitBreaker) -> None:
        self.url = url
        self.weight = weight
        self.pool = pool
        self.breaker = breaker
        self.healthy = True
        self.priority = 0  # DNS SRV priority: lower tiers serve first (Upstream.pick)

    @property
    def available(self) -> bool:
        return self.weight > 0 and self.healthy and self.breaker.allows()

    @property
    def active(self) -> int:
        return self.pool.active_requests

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "weight": self.weight,
            "priority": self.priority,
            "healthy": self.healthy,
            "circuit": self.breaker.state.value,
            "active_requests": self.pool.active_requests,
            "open_connections": self.pool.open_connections,
        }

    def __repr__(self) -> str:
        return f"<Target {self.url}>"


def pool_for(
    url: str, cfg: Any, http1_parser: str = "auto", *, ssl_context: ssl.SSLContext | None = None,
    server_name: str | None = None, label: str | None = None, host_name: str | None = None,
) -> ConnectionPool:
    """A pool for one target; ``http1_parser`` is the gateway's (the listener's) parser choice.

    ``ssl_context`` is the upstream's (its ``tls`` table, built at config load); without one an
    https:// pool verifies against the system trust store unless ``cfg.tls_verify`` is false.
    ``host_name`` is sent in Host instead of the URL's host (a discovered address: its DNS name).
    """
    u = urlsplit(url)
    tls = u.scheme == "https"
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return ConnectionPool(
        host, u.port or (443 if tls else 80), tls=tls, tls_verify=getattr(cfg, "tls_verify", True) is not False,
        ssl_context=ssl_context, server_name=server_name, label=label,
        max_connections=cfg.max_connections, max_idle=cfg.max_idle, idle_timeout=cfg.idle_timeout,
        connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout, write_timeout=cfg.write_timeout,
        pool_timeout=getattr(cfg, "pool_timeout", None), http1_parser=http1_parser, host_name=host_name,
    )


class Balancer:
    def __init__(self, targets: list[Target]) -> None:
        self.targets = targets

    def pick(self, key: str | None, exclude: Collection[Target] = ()) -> Target | None:
        raise NotImplementedError  # abstract: every strategy below overrides it


class RoundRobin(Balancer):
    """Smooth weighted round-robin (nginx's algorithm): equal weights give plain rotation."""

    def __init__(self, targets: list[Target]) -> None:
        super().__init__(targets)
        self.current = [0] * len(targets)

    def pick(self, key: str | None, exclude: Collection[Target] = ()) -> Target | None:
        best = -1
        total = 0
        targets = self.targets
        current = self.current
        for i, t in enumerate(targets):
            if (exclude and t in exclude) or not t.available:
                continue
            current[i] += t.weight
            total += t.weight
            if best < 0 or current[i] > current[best]:
                best = i
        if best < 0:
            return None
        current[best] -= total
        return targets[best]


class LeastConnections(Balancer):
    """Fewest active requests relative to weight; ties rotate."""

    def __init__(self, targets: list[Target]) -> None:
        super().__init__(targets)
        self.offset = 0

    def pick(self, key: str | None, exclude: Collection[Target] = ()) -> Target | None:
        n = len(self.targets)
        if not n:
            return None
        best: Target | None = None
        best_load = 0.0
        self.offset = (self.offset + 1) % n
        for j in range(n):
            t = self.targets[(self.offset + j) % n]
            if (exclude and t in exclude) or not t.available:
                continue
            load = t.active / t.weight
            if best is None or load < best_load:
                best, best_load = t, load
        return best


class ConsistentHash(Balancer):
    """A hash ring with 160 virtual nodes per unit of weight (ketama-like).

    A key keeps its target while that target is available; when it is not, the
    next target clockwise takes over, so only its keys move.
    """

    VNODES = 160

    def __init__(self, targets: list[Target]) -> None:
        super().__init__(targets)
        ring: list[tuple[int, int]] = []
        for idx, t in enumerate(targets):
            for v in range(self.VNODES * t.weight):
                ring.append((self._hash(f"{t.url}#{v}"), idx))
        ring.sort()
        self.points = [p for p, _ in ring]
        self.owners = [i for _, i in ring]

    @staticmethod
    def _hash(s: str) -> int:
        return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big")

    def pick(self, key: str | None, exclude: Collection[Target] = ()) -> Target | None:
        if not self.points:
            return None
        start = bisect.bisect(self.points, self._hash(key or ""))
        n = len(self.points)
        seen: set[int] = set()
        for j in range(n):
            idx = self.owners[(start + j) % n]
            if idx in seen:
                continue
            seen.add(idx)
            t = self.targets[idx]
            if (exclude and t in exclude) or not t.available:
                if len(seen) == len(self.targets):
                    break
                continue
            return t
        return None


BALANCERS: dict[str, Callable[[list[Target]], Balancer]] = {
    "round-robin": RoundRobin,
    "weighted": RoundRobin,
    "least-connections": LeastConnections,
    "consistent-hash": ConsistentHash,
}


def make_balancer(name: str, targets: list[Target]) -> Balancer:
    return BALANCERS[name](targets)
