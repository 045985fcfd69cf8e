"""Counter stores: ``MemoryBackend`` (one process, bounded) and ``RedisBackend`` (shared, one script per decision).

A decision checks a list of :class:`Check` (one per limit of every policy) and returns
:class:`Result` per check plus whether the request may pass; a rejected request
consumes nothing in any limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import trio
from triogate_redis import RedisClient, load_script

from .algorithms import decide

__all__ = ["Check", "MemoryBackend", "RedisBackend", "Result", "wall_clock_us"]

SCRIPT = load_script(__package__, "ratelimit.lua")


class Check(NamedTuple):
    """One limit to check for one subject (tuples: built per request, cheaper than attrs classes)."""

    key: str
    algorithm: str
    count: int
    window_us: int
    burst: int


class Result(NamedTuple):
    remaining: int
    reset_us: int
    retry_us: int

    @property
    def exhausted(self) -> bool:
        return self.retry_us > 0


def wall_clock_us() -> Callable[[], int]:
    """Microseconds on trio's clock (so a mock clock drives it), anchored to wall time once."""
    offset = time.time() - trio.current_time()
    return lambda: int((offset + trio.current_time()) * 1_000_000)


class MemoryBackend:
    """Counters in this process: at most ``max_keys``; expired keys are evicted first, then the least recently used.

    With ``workers > 1`` every worker process has its own counters (use Redis for one shared view).
    """

    def __init__(self, max_keys: int, clock: Callable[[], int] | None = None) -> None:
        self.max_keys = max_keys
        self.clock = clock
        # key -> (state, expires_at_us); ordered by last use
        self.entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.evicted = {"expired": 0, "live": 0}

    def __len__(self) -> int:
        return len(self.entries)

    async def decide(self, checks: Sequence[Check]) -> tuple[bool, list[Result]]:
        if self.clock is None:
            self.clock = wall_clock_us()
        now = self.clock()
        entries = self.entries
        allowed = True
        results: list[Result] = []
        writes: list[tuple[str, Any, int]] = []
        for check in checks:
            entry = entries.get(check.key)
            state = entry[0] if entry is not None and entry[1] > now else None
            ok, remaining, reset, retry, new_state, ttl = decide(
                check.algorithm, state, now, check.count, check.window_us, check.burst)
            allowed = allowed and ok
            results.append(Result(remaining, reset, retry))
            writes.append((check.key, new_state, now + ttl))
        if allowed:
            for key, state, expires in writes:
                if key in entries:
                    entries.move_to_end(key)
                elif len(entries) >= self.max_keys:
                    self._make_room(now)
                entries[key] = (state, expires)
        return allowed, results

    def _make_room(self, now: int) -> None:
        """Drop expired entries; if still full, the least recently used down to 90% (amortized O(1) per insert)."""
        expired = [k for k, (_, exp) in self.entries.items() if exp <= now]
        for k in expired:
            del self.entries[k]
        self.evicted["expired"] += len(expired)
        target = max(self.max_keys - max(self.max_keys // 10, 1), 0)
        while len(self.entries) > target:
            self.entries.popitem(last=False)
            self.evicted["live"] += 1


class RedisBackend:
    """Counters in Redis: one Lua script per decision, Redis's clock, exact across gateway processes."""

    def __init__(self, client: RedisClient, clock: Callable[[], int] | None = None) -> None:
        self.client = client
        self.clock = clock  # tests only: None uses the Redis server clock (TIME)

    async def decide(self, checks: Sequence[Check]) -> tuple[bool, list[Result]]:
        args: list[Any] = ["" if self.clock is None else str(self.clock())]
        for c in checks:
            args += [c.algorithm, c.count, c.window_us, c.burst]
        reply = await self.client.run_script(SCRIPT, [c.key for c in checks], args)
        results = [Result(int(reply[i]), int(reply[i + 1]), int(reply[i + 2])) for i in range(1, len(reply), 3)]
        return bool(reply[0]), results
