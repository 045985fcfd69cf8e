"""Per-route request counters and a small latency histogram, kept by the core for every request.

:meth:`RouteStats.record` runs once per request, after the response is sent
(:meth:`triogate.Gateway.finish`, so both listeners), and is kept cheap (~0.2 µs): one dict
lookup, one ``bisect`` on a precomputed tuple of bucket bounds and an increment in a list
of ints; nothing else is allocated for a route already seen. Everything else (rates,
quantiles, merging the workers' numbers) happens when someone asks, off the hot path.

- *requests*: every response, whatever its status, including those the gateway produced
  itself (401, 404, 429, ...); requests that matched no route are counted under ``None``.
- *errors*: responses with a 5xx status, from the gateway (500 for a failing plugin,
  502/503/504 when an upstream fails) or passed on from the upstream.
- *latency*: from the request head being read to the response being sent (the access log's
  ``duration_ms``), counted in :data:`BOUNDS` buckets (upper bounds, in seconds).

Rates and the recent quantiles come from a ring of per-second copies of the counters
(:meth:`RouteStats.tick`, called once a second by the admin API): the difference between
now and the oldest copy (up to :data:`WINDOW` seconds ago) over the time between them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["BOUNDS", "BOUNDS_MS", "WINDOW", "RouteStats", "merge_counts", "quantile", "summarize"]

#: upper bounds of the latency buckets in milliseconds (a last bucket counts what is slower)
BOUNDS_MS: tuple[float, ...] = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500,
                                1000, 2500, 5000, 10000, 30000)
#: the same bounds in seconds, what :meth:`RouteStats.record` compares with
BOUNDS: tuple[float, ...] = tuple(b / 1000 for b in BOUNDS_MS)
_NB = len(BOUNDS) + 1  # buckets, the overflow one included
#: seconds of history the rates and recent quantiles are computed over
WINDOW = 10


class RouteStats:
    """The counters of one process, by route name (``None``: requests that matched no route).

    Each route's counters are one list of ints: the bucket counts (their sum is the number of
    requests), then the number of errors.
    """

    __slots__ = ("_ring", "counters")

    def __init__(self) -> None:
        self.counters: dict[str | None, list[int]] = {}
        #: (monotonic time, {route: copy of its counters}), oldest first; one entry a second
        self._ring: deque[tuple[float, dict[str | None, list[int]]]] = deque([(time.monotonic(), {})],
                                                                             maxlen=WINDOW + 1)

    def record(self, route: str | None, status: int, seconds: float) -> None:
        """Count one finished request (the hot path: keep it allocation-free)."""
        c = self.counters.get(route)
        if c is None:
            c = self.counters[route] = [0] * (_NB + 1)
        c[bisect_left(BOUNDS, seconds)] += 1
        if status >= 500:
            c[-1] += 1

    def tick(self, now: float | None = None) -> None:
        """Keep a copy of the counters for the rates (once a second, off the hot path)."""
        self._ring.append((time.monotonic() if now is None else now,
                           {k: v.copy() for k, v in self.counters.items()}))

    def rows(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every route's totals and its counts over the last :data:`WINDOW` seconds (JSON-able).

        ``{"route", "counts", "errors", "window_counts", "window_errors", "window_seconds"}``:
        what a worker publishes, and what :func:`summarize` turns into rates and quantiles.
        """
        now = time.monotonic() if now is None else now
        then, old = self._ring[0]
        seconds = max(now - then, 1e-3)
        out = []
        for route, c in list(self.counters.items()):
            before = old.get(route)
            window = c if before is None else [a - b for a, b in zip(c, before, strict=True)]
            out.append({"route": route, "counts": c[:_NB], "errors": c[_NB], "window_counts": window[:_NB],
                        "window_errors": window[_NB], "window_seconds": round(seconds, 3)})
        return out


def merge_counts(lists: Iterable[Sequence[int]]) -> list[int]:
    """Histograms added bucket by bucket (the workers' numbers of one route)."""
    out = [0] * _NB
    for counts in lists:
        for i, n in enumerate(counts[:_NB]):
            out[i] += n
    return out


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile in milliseconds estimated from bucket ``counts`` (None without data).

    Linear within the bucket the rank falls in (as Prometheus' ``histogram_quantile``); a rank
    in the overflow bucket answers the last bound.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lo = BOUNDS_MS[i - 1] if i else 0.0
            return round(lo + (BOUNDS_MS[i] - lo) * ((rank - seen) / n), 3)
        seen += n
    return float(BOUNDS_MS[-1])


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One route's numbers from the :meth:`RouteStats.rows` of one or more workers.

    Totals and histograms add up; rates add up too, each worker's over its own window.
    """
    counts: list[list[int]] = []
    window: list[list[int]] = []
    errors = requests_rate = errors_rate = 0.0
    for r in rows:
        counts.append(r["counts"])
        window.append(r["window_counts"])
        errors += r["errors"]
        secs = r["window_seconds"] or 1.0
        requests_rate += sum(r["window_counts"]) / secs
        errors_rate += r["window_errors"] / secs
    total = merge_counts(counts)
    recent = merge_counts(window)
    return {
        "requests": sum(total),
        "errors": int(errors),
        "requests_per_s": round(requests_rate, 3),
        "errors_per_s": round(errors_rate, 3),
        "p50_ms": quantile(recent, 0.5),
        "p99_ms": quantile(recent, 0.99),
        "histogram": total,
    }
