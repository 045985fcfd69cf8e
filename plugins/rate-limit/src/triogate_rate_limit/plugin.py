"""The ``rate-limit`` plugin: decide in the transform phase (after auth), add headers in post_response."""

from __future__ import annotations

import logging
from typing import Any

import trio
from triogate import Context, GatewayServices, Plugin, Response, hookimpl
from triogate_redis import RedisUnavailable, shared_client

from .backends import Check, MemoryBackend, RedisBackend, Result
from .config import Limit, RateLimitConfig
from .headers import legacy_names, policy_item, ratelimit_value, seconds, set_legacy
from .keys import subject_function
from .metrics import RateLimitStats, stats_of

__all__ = ["RateLimitPlugin"]

log = logging.getLogger("triogate.rate_limit")

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
UNAVAILABLE_LOG_INTERVAL = 10.0
#: subject tuples whose checks are kept built (the memo is emptied when full: a bound, not an LRU)
CHECKS_MEMO_SIZE = 4096


class _Policy:
    __slots__ = ("algorithm", "bursts", "legacy", "limits", "name", "names", "subject")

    def __init__(self, name: str, subject: Any, limits: list[Limit], algorithm: str, burst: int | None) -> None:
        self.name = name
        self.subject = subject
        self.limits = limits
        self.names = [f"{name}-{lim.label}" for lim in limits]
        self.legacy = [legacy_names(lim) for lim in limits]
        self.algorithm = algorithm
        self.bursts = [burst or lim.count for lim in limits]


class RateLimitPlugin(Plugin):
    """Limits requests per consumer, credential, client IP, header, route or path."""

    priority = 900
    Config = RateLimitConfig

    def __init__(self, config: RateLimitConfig, gateway: GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.scope = route or "*"
        self.policies = [
            _Policy(p.policy_name, subject_function(p), p.parsed_limits, p.algorithm_name, p.burst)
            for p in config.all_policies
        ]
        self.policy_header = ",".join(
            policy_item(n, lim) for pol in self.policies for n, lim in zip(pol.names, pol.limits, strict=True))
        self.state_key = f"rate-limit:{id(self)}"
        # set in startup, from the core's shared resources
        self.stats: RateLimitStats
        self.backend: MemoryBackend | RedisBackend
        self.redis = None
        self.prefix = config.redis.key_prefix + "rl:" if config.backend == "redis" else ""
        self._unavailable_since_log = 0
        self._last_unavailable_log = -UNAVAILABLE_LOG_INTERVAL
        self._built: dict[tuple[str | None, ...], tuple[list[Check], list[tuple[str, Limit, tuple[str, str]]]]] = {}
        self._instance: str | None = None

    def request_header_names(self) -> list[tuple[str, str]]:
        c = self.config
        out = [("key_header", c.key_header)] if c.limits and c.key == "header" and c.key_header else []
        out += [(f"policies[{i}].key_header", p.key_header) for i, p in enumerate(c.policies)
                if p.key == "header" and p.key_header]
        return out

    @property
    def instance(self) -> str:
        if self._instance is None:  # the core names the instance after construction
            self._instance = f"{getattr(self, 'name', 'rate-limit') or 'rate-limit'}@{self.scope}"
        return self._instance

    @hookimpl
    async def startup(self, gateway: GatewayServices) -> None:
        config = self.config
        self.stats = await stats_of(gateway)
        if config.backend == "redis":
            self.redis = await shared_client(gateway, config.redis, name="rate-limit")
            self.backend = RedisBackend(self.redis)
        else:  # per process: a reload with unchanged settings keeps counting where it was
            self.backend = await gateway.shared(
                ("triogate_rate_limit", "memory", self.scope, repr(config)),
                lambda: MemoryBackend(config.memory_max_keys), scope="process")

    # ------------------------------------------------------------------ decision

    def checks(self, ctx: Context) -> tuple[list[Check], list[tuple[str, Limit, tuple[str, str]]]]:
        """The checks for this request's subjects: built once per subject tuple, then reused."""
        subjects = tuple([pol.subject(ctx) for pol in self.policies])
        built = self._built.get(subjects)
        if built is None:
            built = self._build_checks(subjects)
            if len(self._built) >= CHECKS_MEMO_SIZE:
                self._built.clear()
            self._built[subjects] = built
        return built

    def _build_checks(self, subject_values: tuple[str | None, ...]
                      ) -> tuple[list[Check], list[tuple[str, Limit, tuple[str, str]]]]:
        checks: list[Check] = []
        meta: list[tuple[str, Limit, tuple[str, str]]] = []
        subjects = list(zip(self.policies, subject_values, strict=True))
        single = len(self.policies) == 1
        for pol, subject in subjects:
            if subject is None:
                continue
            # {hash tag}: one Redis Cluster slot per decision, so one script can check every limit
            base = (f"{self.prefix}{{{self.scope}:{pol.name}:{subject}}}" if single
                    else f"{self.prefix}{{{self.scope}}}:{pol.name}:{subject}")
            for i, lim in enumerate(pol.limits):
                checks.append(Check(f"{base}:{lim.window}", pol.algorithm, lim.count, lim.window * 1_000_000,
                                    pol.bursts[i]))
                meta.append((pol.names[i], lim, pol.legacy[i]))
        return checks, meta

    @hookimpl
    async def transform(self, ctx: Context) -> Response | None:
        checks, meta = self.checks(ctx)
        if not checks:
            return None
        try:
            allowed, results = await self.backend.decide(checks)
        except RedisUnavailable as exc:
            return self._unavailable(ctx, exc)
        if not allowed:  # nothing was consumed: report what is left without this request
            results = [r if r.exhausted else Result(r.remaining + 1, r.reset_us, 0) for r in results]
        ctx.state[self.state_key] = (meta, results)
        if allowed:
            self.stats.count(self.instance, "allowed")
            return None
        self.stats.count(self.instance, "limited")
        retry = max(seconds(r.retry_us) for r in results if r.exhausted)
        violated = [m[0] for m, r in zip(meta, results, strict=True) if r.exhausted]
        ctx.log_extra["ratelimit"] = "limited"
        return ctx.problem(429, self.config.message, type=QUOTA_EXCEEDED, headers=[("retry-after", str(max(retry, 1)))],
                           **{"violated-policies": violated})

    def _unavailable(self, ctx: Context, exc: RedisUnavailable) -> Response | None:
        self._unavailable_since_log += 1
        now = trio.current_time()
        if now - self._last_unavailable_log >= UNAVAILABLE_LOG_INTERVAL:
            log.warning("rate-limit %s: Redis unavailable (%s); %d request(s) %s since the last report",
                        self.instance, exc, self._unavailable_since_log,
                        "let through" if self.config.fault_tolerant else "answered 503")
            self._last_unavailable_log = now
            self._unavailable_since_log = 0
        ctx.state[self.state_key] = None
        if self.config.fault_tolerant:
            self.stats.count(self.instance, "unavailable_allowed")
            ctx.log_extra["ratelimit"] = "unavailable-allowed"
            return None
        self.stats.count(self.instance, "unavailable_rejected")
        ctx.log_extra["ratelimit"] = "unavailable-rejected"
        return ctx.problem(503, "rate limiting is temporarily unavailable", headers=[("retry-after", "1")])

    # ------------------------------------------------------------------ headers

    @hookimpl
    async def post_response(self, ctx: Context, response: Response) -> Response | None:
        if self.state_key not in ctx.state:
            return None
        entry = ctx.state[self.state_key]
        headers = response.headers
        if self.config.headers:
            headers.add("RateLimit-Policy", self.policy_header)
        if entry is None:  # the store was unavailable: no live numbers
            return None
        meta, results = entry
        if self.config.headers:
            headers.add("RateLimit", ratelimit_value([m[0] for m in meta], results))
        if self.config.legacy_headers:
            for (_, lim, names), res in zip(meta, results, strict=True):
                set_legacy(headers, names, lim.count, res.remaining)
        return None
