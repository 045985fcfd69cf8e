"""The window math, in microseconds, for the memory backend; ``ratelimit.lua`` mirrors it line by line.

Each function takes the stored state of one limit (or None) and returns
``(allowed, remaining, reset_us, retry_us, new_state, ttl_us)``; ``new_state`` is what
to store when the whole decision is allowed (a request rejected by any limit
consumes nothing).

- fixed-window: ``count`` per window aligned to ``now // window``.
- sliding-window (counter): the previous window's count weighted by how much of it
  still overlaps the sliding window, plus the current count.
- gcra (token bucket): a theoretical arrival time; ``burst`` requests may come at
  once, then one every ``window / count``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Outcome", "decide"]

#: float tolerance (half a microsecond) for GCRA times that are not whole microseconds
EPSILON_US = 0.5

Outcome = tuple[bool, int, int, int, Any, int]


def fixed_window(state: Any, now: int, limit: int, window: int, burst: int) -> Outcome:
    idx = now // window
    count = state[1] if state is not None and state[0] == idx else 0
    reset = (idx + 1) * window - now
    if count + 1 <= limit:
        return True, limit - count - 1, reset, 0, (idx, count + 1), reset
    return False, 0, reset, reset, state, reset


def sliding_window(state: Any, now: int, limit: int, window: int, burst: int) -> Outcome:
    idx = now // window
    cur = prev = 0
    if state is not None:
        if state[0] == idx:
            cur, prev = state[1], state[2]
        elif state[0] == idx - 1:
            prev = state[1]
    elapsed = now - idx * window
    weight = (window - elapsed) / window
    estimate = prev * weight + cur
    reset = window - elapsed
    if estimate + 1 <= limit:
        remaining = math.floor(limit - estimate - 1)
        return True, remaining, reset, 0, (idx, cur + 1, prev), 2 * window - elapsed
    if cur + 1 <= limit:  # wait for the previous window's share to decay enough
        needed = window * (prev - (limit - cur - 1)) / prev
        retry = math.ceil(needed - elapsed)
    else:  # wait into the next window, where this window's count is the decaying one
        needed = window * (cur - (limit - 1)) / cur
        retry = math.ceil(reset + needed)
    return False, 0, reset, max(retry, 1), state, 2 * window - elapsed


def gcra(state: Any, now: int, limit: int, window: int, burst: int) -> Outcome:
    interval = window / limit
    slack = (burst - 1) * interval  # how far ahead of now the theoretical arrival time may run
    diff = state - now if state is not None and state > now else 0
    if diff <= slack + EPSILON_US:
        remaining = math.floor((slack - diff + EPSILON_US) / interval)
        ttl = math.ceil(diff + interval)
        return True, remaining, ttl, 0, now + diff + interval, ttl
    retry = math.ceil(diff - slack)
    return False, 0, math.ceil(diff), max(retry, 1), state, math.ceil(diff)


ALGORITHMS = {"fixed-window": fixed_window, "sliding-window": sliding_window, "gcra": gcra}


def decide(algorithm: str, state: Any, now: int, limit: int, window: int, burst: int) -> Outcome:
    return ALGORITHMS[algorithm](state, now, limit, window, burst)
