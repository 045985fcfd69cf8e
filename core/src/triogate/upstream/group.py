"""An upstream service: its targets, balancer, health and the retry rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..messages import Body, Response
from ..problem import ServiceUnavailable
from .balancer import Target, make_balancer, pool_for
from .health import CircuitBreaker
from .pool import IDEMPOTENT_METHODS, PoolTimeout, UpstreamError, UpstreamTimeout

__all__ = ["Upstream"]


class Upstream:
    """Named group of targets. ``request`` picks a target, retries where it is safe.

    Retries go to a target not tried yet, only when nothing of the request reached
    the failed target (connect failure) or the method is idempotent and the body can
    be replayed; there are at most ``retries`` of them per request.
    """

    def __init__(self, name: str, cfg: Any) -> None:
        self.name = name
        self.cfg = cfg
        cb = cfg.circuit_breaker
        self.targets = [
            Target(t.url, t.weight, pool_for(t.url, cfg), CircuitBreaker(cb.failures, cb.open_seconds))
            for t in cfg.targets
        ]
        self.balancer = make_balancer(cfg.balancer, self.targets)
        self.failure_statuses = frozenset(cb.failure_statuses)
        self.retries = cfg.retries
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
        for _ in range(1 + self.retries):
            t = self.balancer.pick(key, tried)
            if t is None:
                break
            breaker = t.breaker
            breaker.on_attempt()
            try:
                resp = await t.pool.request(method, target, headers, body)
            except (UpstreamError, UpstreamTimeout) as exc:
                breaker.on_failure()
                tried.append(t)
                last = exc
                if body is not None and body.started and not body.is_buffered:
                    raise  # part of a one-shot body is gone: nothing to replay
                if exc.sent and method not in IDEMPOTENT_METHODS:
                    raise  # the target may have acted on it
                continue
            except PoolTimeout as exc:
                breaker.on_abandon()
                tried.append(t)
                last = exc
                continue
            except BaseException:
                breaker.on_abandon()  # cancelled or the client's fault: not the target's
                raise
            if resp.status in self.failure_statuses:
                breaker.on_failure()
            else:
                breaker.on_success()
            return resp, t
        if last is not None:
            raise last
        raise ServiceUnavailable(f"no healthy target in upstream {self.name!r}")

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "balancer": self.cfg.balancer, "targets": [t.status() for t in self.targets]}

    async def aclose(self) -> None:
        for t in self.targets:
            await t.pool.aclose()
