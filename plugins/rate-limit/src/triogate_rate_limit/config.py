"""Configuration: limits ("10/second"), algorithm, key, backend; parsed once at config load."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

import attrs
from triogate import fields, setting
from triogate_redis import RedisConfig

__all__ = ["Limit", "PolicyConfig", "RateLimitConfig", "parse_limit"]

Algorithm = Literal["sliding-window", "fixed-window", "gcra", "token-bucket"]
KeyKind = Literal["consumer", "credential", "ip", "header", "route", "path", "global"]

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SHORT = {"s": "second", "sec": "second", "m": "minute", "min": "minute", "h": "hour", "hr": "hour", "d": "day"}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)?\s*([a-z]+?)s?\s*$")


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" for c in word)


#: what :func:`parse_limit` accepts, as a JSON Schema pattern (no flags there: each letter in either case)
LIMIT_PATTERN = (r"^\s*0*[1-9][0-9]*\s*/\s*(0*[1-9][0-9]*)?\s*("
                 + "|".join(_any_case(u) for u in sorted({*_UNITS, *_SHORT}, key=len, reverse=True))
                 + r")[sS]?\s*$")


@attrs.frozen
class Limit:
    """``count`` requests per ``window`` seconds; ``label`` names it in headers (``minute``, ``30s``)."""

    count: int
    window: int
    label: str


def parse_limit(text: str) -> Limit:
    """``"10/second"``, ``"1000/hour"``, ``"100/30s"``, ``"5/10 minutes"`` → :class:`Limit`."""
    m = _LIMIT.match(text.lower())
    unit = m and (_SHORT.get(m.group(3)) or (m.group(3) if m.group(3) in _UNITS else None))
    if not m or not unit:
        raise ValueError(f'cannot parse limit {text!r}: expected "<count>/<period>" like "10/second", '
                         '"1000/hour" or "100/30s" (periods: second, minute, hour, day)')
    count, mult = int(m.group(1)), int(m.group(2) or 1)
    if count < 1 or mult < 1:
        raise ValueError(f"limit {text!r}: count and period must be positive")
    window = mult * _UNITS[unit]
    label = unit if mult == 1 else f"{window}s"
    return Limit(count, window, label)


def _normalize_algorithm(value: str) -> str:
    return "gcra" if value == "token-bucket" else value


def _parsed_or_none(text: str) -> Limit | None:
    try:
        return parse_limit(text)
    except ValueError:
        return None


def _limit_problems(inst: object, name: str, value: list[str]) -> Iterator[tuple[str, str]]:
    """Each limit that does not parse, with its index (``limits[1]: cannot parse limit ...``)."""
    for i, text in enumerate(value):
        try:
            parse_limit(text)
        except ValueError as exc:
            yield fields.key_path(name, i), str(exc)


@attrs.define(frozen=True)
class PolicyConfig:
    """One rate-limit policy: its limits, algorithm and what it counts by."""

    limits: list[str] = setting(
        factory=list, description='limits that all apply, e.g. ["10/second", "1000/hour"] (also "100/30s")',
        validator=fields.Check(_limit_problems), metadata={"schema": {"items": {"pattern": LIMIT_PATTERN}}})
    name: str = setting(
        "", description="policy name in RateLimit headers and in counter keys; default: the key kind",
        validator=fields.check(lambda v: not v or re.fullmatch(r"[A-Za-z0-9_.-]+", v) is not None,
                               "letters, digits, '_', '.', '-' only"))
    key: KeyKind = setting(
        "consumer", description="what is counted separately: consumer, credential, ip (trusted-proxy aware), "
                                "header, route, path or global (one counter for everything)")
    key_header: str = setting(
        "", description='request header to count by when key = "header"',
        validator=fields.check(lambda v: not v or fields.is_header_name(v), "a header name"))
    fallback: Literal["ip", "allow"] = setting(
        "ip", description="when the key is missing (no consumer, no header): count by client ip, or let it through")
    algorithm: Algorithm = setting(
        "sliding-window", description="sliding-window (counter), fixed-window, or gcra (token bucket; "
                                      "token-bucket is an alias)")
    burst: int | None = setting(
        None, description="gcra only: bucket capacity (requests allowed at once); default: each limit's count")

    def __attrs_post_init__(self) -> None:
        parsed = [lim for lim in map(_parsed_or_none, self.limits) if lim is not None]  # others: _limit_problems
        windows = [lim.window for lim in parsed]
        if len(set(windows)) != len(windows):
            raise ValueError("limits: two limits with the same period")
        if self.key == "header" and not self.key_header:
            raise ValueError('key_header: required when key = "header"')
        if self.key != "header" and self.key_header:
            raise ValueError('key_header: only used with key = "header"')
        if self.burst is not None:
            if self.burst < 1:
                raise ValueError("burst: must be >= 1")
            if _normalize_algorithm(self.algorithm) != "gcra":
                raise ValueError('burst: only used with algorithm = "gcra"')

    @property
    def parsed_limits(self) -> list[Limit]:
        return sorted((parse_limit(text) for text in self.limits), key=lambda lim: lim.window)

    @property
    def policy_name(self) -> str:
        return self.name or (f"header-{self.key_header.lower()}" if self.key == "header" else self.key)

    @property
    def algorithm_name(self) -> str:
        return _normalize_algorithm(self.algorithm)


@attrs.define(frozen=True)
class RateLimitConfig(PolicyConfig):
    """The instance's own policy (the fields above) plus more ``policies``, a backend and headers."""

    policies: list[PolicyConfig] = setting(
        factory=list, description="more policies checked with the same backend (e.g. per consumer AND per route); "
                                  "a request passes only if every policy allows it")
    backend: Literal["memory", "redis"] = setting(
        "memory", description="memory (per gateway process) or redis (shared by every process and host)")
    redis: RedisConfig = setting(factory=RedisConfig, description='Redis connection (backend = "redis")')
    fault_tolerant: bool = setting(
        True, description="when Redis is unavailable: true lets requests through (counted and logged), "
                          "false answers 503")
    memory_max_keys: int = setting(
        100_000, description="memory backend: most counters kept; expired ones go first, then least recently used")
    headers: bool = setting(True, description="send RateLimit-Policy and RateLimit (IETF httpapi draft) headers")
    legacy_headers: bool = setting(
        True, description="send Kong-style X-RateLimit-Limit-<period> / X-RateLimit-Remaining-<period> headers")
    message: str = setting("rate limit exceeded", description="detail of the 429 problem+json")

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if not self.limits and not self.policies:
            raise ValueError('limits: required (e.g. limits = ["10/second"]) unless policies are given')
        for i, policy in enumerate(self.policies):
            if not policy.limits:
                raise ValueError(f"policies[{i}].limits: required")
        names = [p.policy_name for p in self.all_policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policies: duplicate policy name(s) {', '.join(dupes)}; set `name` to tell them apart")
        if self.memory_max_keys < 1:
            raise ValueError("memory_max_keys: must be >= 1")

    @property
    def all_policies(self) -> list[PolicyConfig]:
        own = [self] if self.limits else []
        return own + list(self.policies)
