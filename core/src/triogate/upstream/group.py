"""An upstream service: its targets, balancer, health and the retry rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from ..messages import Body, Response
from ..problem import ServiceUnavailable
from .balancer import Target, make_balancer, pool_for
from .health import CircuitBreaker, status_verdict, verdict
from .pool import IDEMPOTENT_METHODS, PoolTimeout, UpstreamError, UpstreamTimeout
from ..tlsfiles import client_context

__all__ = ["Upstream"]


class RetryBudget:
    """Retries may add at most ``ratio`` of the requests, plus ``per_second`` whatever the traffic.

    A token bucket (Finagle's RetryBudget, Envoy's retry budgets): every request deposits
    ``ratio`` of a token, every retry takes one, and ``per_second`` tokens trickle in; so when an
    upstream fails, retries cannot multiply its load.
    """

    __slots__ = ("ratio", "per_second", "cap", "tokens", "stamp")

    def __init__(self, ratio: float, per_second: float) -> None:
        self.ratio = ratio
        self.per_second = per_second
        self.cap = max(10.0 * per_second, 100.0 * ratio, 1.0)
        self.tokens = self.cap
        self.stamp = trio.current_time() if _in_trio() else 0.0

    def deposit(self) -> None:
        if self.tokens < self.cap:
            self.tokens = min(self.cap, self.tokens + self.ratio)

    def withdraw(self) -> bool:
        now = trio.current_time()
        if self.per_second:
            self.tokens = min(self.cap, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


class Upstream:
    """Named group of targets. ``request`` picks a target, retries where it is safe.

    Retries go to a target not tried yet, only when nothing of the request reached
    the failed target (connect failure) or the method is idempotent and the body can
    be replayed; there are at most ``retries`` of them per request, and all of them
    together stay within the upstream's :class:`RetryBudget`.
    """

    def __init__(self, name: str, cfg: Any, http1_parser: str = "auto", base: Path | None = None) -> None:
        """``base`` is the directory relative ``tls`` file paths start from (the config file's).

        Raises :class:`~triogate.tlsfiles.TLSFileError` when a ``tls`` file cannot be used.
        """
        self.name = name
        self.cfg = cfg
        cb = cfg.circuit_breaker
        tls = getattr(cfg, "tls_settings", None)
        https = any(t.url.lower().startswith("https://") for t in cfg.targets)
        # one context for all targets: the files are read once per config load (and reload)
        ctx = client_context(tls, base or Path.cwd()) if tls is not None and https else None
        server_name = tls.server_name if tls is not None else None
        self.targets = [
            Target(t.url, t.weight,
                   pool_for(t.url, cfg, http1_parser, ssl_context=ctx, server_name=server_name,
                            label=f"upstream {name!r} target {t.url}"),
                   CircuitBreaker(cb.failures, cb.open_seconds))
            for t in cfg.targets
        ]
        self.balancer = make_balancer(cfg.balancer, self.targets)
        self.failure_statuses = frozenset(cb.failure_statuses)
        self.retries = cfg.retries
        self.budget = RetryBudget(cfg.retry_budget, cfg.min_retries_per_second)
        self.needs_key = cfg.balancer == "consistent-hash"

    def hash_key(self, ctx: Any) -> str | None:
        if not self.needs_key:
            return None
        how = self.cfg.hash_on
        if how == "client-ip":
            return ctx.client_ip
        if how == "path":
            return ctx.request.path
        kind, _, name = how.partition(":")
        if kind == "header":
            return ctx.request.headers.get(name)
        if kind == "cookie":
            return ctx.request.cookies().get(name)
        return None

    async def request(
        self,
        method: str,
        target: str | bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: Body | None = None,
        *,
        key: str | None = None,
    ) -> tuple[Response, Target]:
        if body is not None:
            await body.prime()  # a bad body fails before any target is tried (and is never a target's fault)
        tried: list[Target] = []
        last: Exception | None = None
        self.budget.deposit()
        for attempt in range(1 + self.retries):
            if attempt and not self.budget.withdraw():
                break  # out of retry budget: a failing upstream does not get more traffic from retries
            t = self.balancer.pick(key, tried)
            if t is None:
                break
            breaker = t.breaker
            breaker.on_attempt()
            try:
                resp = await t.pool.request(method, target, headers, body)
            except (UpstreamError, UpstreamTimeout) as exc:
                breaker.record(verdict(exc))
                tried.append(t)
                last = exc
                if body is not None and body.started and not body.is_buffered:
                    raise  # part of a one-shot body is gone: nothing to replay
                if exc.sent and method not in IDEMPOTENT_METHODS:
                    raise  # the target may have acted on it
                continue
            except PoolTimeout as exc:
                breaker.record(verdict(exc))
                tried.append(t)
                last = exc
                continue
            except BaseException as exc:
                breaker.record(verdict(exc))  # not retried: the client's fault, cancelled, or ours
                raise
            breaker.record(status_verdict(resp.status, self.failure_statuses))
            return resp, t
        if last is not None:
            raise last
        raise ServiceUnavailable(f"no healthy target in upstream {self.name!r}")

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "balancer": self.cfg.balancer, "targets": [t.status() for t in self.targets]}

    async def aclose(self) -> None:
        for t in self.targets:
            await t.pool.aclose()
