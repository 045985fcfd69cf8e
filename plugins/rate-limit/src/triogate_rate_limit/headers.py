"""Response headers: ``RateLimit-Policy`` / ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-11) and Kong's.

    RateLimit-Policy: "consumer-minute";q=5;w=60
    RateLimit: "consumer-minute";r=4;t=42
    X-RateLimit-Limit-Minute: 5
    X-RateLimit-Remaining-Minute: 4

Both draft fields are Structured Field Lists, so several policies (and several
plugin instances) add members, possibly in several field lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from triogate import Headers

from .backends import Result
from .config import Limit

__all__ = ["legacy_names", "policy_item", "ratelimit_value", "seconds"]


def seconds(us: int) -> int:
    """Delay-seconds, rounded up (a client waiting that long is never early)."""
    return max(math.ceil(us / 1_000_000), 0)


def policy_item(name: str, limit: Limit) -> str:
    return f'"{name}";q={limit.count};w={limit.window}'


def ratelimit_value(names: Sequence[str], results: Sequence[Result]) -> str:
    return ",".join([f'"{n}";r={r.remaining};t={seconds(r.reset_us)}' for n, r in zip(names, results, strict=True)])


def legacy_names(limit: Limit) -> tuple[str, str]:
    """``("X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute")``; other windows: ``...-30s``."""
    suffix = limit.label.capitalize() if limit.label in ("second", "minute", "hour", "day") else limit.label
    return f"X-RateLimit-Limit-{suffix}", f"X-RateLimit-Remaining-{suffix}"


def set_legacy(headers: Headers, names: tuple[str, str], count: int, remaining: int) -> None:
    """Set Kong's pair; with several policies of the same period the most constrained one wins."""
    limit_name, remaining_name = names
    current = headers.get(remaining_name)
    if current is not None and current.isdigit() and int(current) <= remaining:
        return
    headers.set(limit_name, str(count))
    headers.set(remaining_name, str(remaining))
