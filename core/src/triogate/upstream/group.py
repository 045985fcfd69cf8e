"""An upstream service: its targets (static, or from DNS: discovery.py), balancers, health and the retry rules."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from ..messages import Body, Response
from ..problem import ServiceUnavailable
from .balancer import Balancer, Target, make_balancer, pool_for
from .discovery import Endpoint, run_discovery
from .health import CircuitBreaker, probe_loop, status_verdict, verdict
from .pool import IDEMPOTENT_METHODS, PoolTimeout, UpstreamError, UpstreamTimeout
from ..tlsfiles import client_context

__all__ = ["Upstream"]

log = logging.getLogger("triogate")


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

    def __init__(self, name: str, cfg: Any, http1_parser: str = "auto", base: Path | None = None,
                 resolvers: Sequence[str] = ()) -> None:
        """``base`` is the directory relative ``tls`` file paths start from (the config file's);
        ``resolvers`` are the gateway's (``gateway.resolvers``), for a discovery table that sets none.

        Raises :class:`~triogate.tlsfiles.TLSFileError` when a ``tls`` file cannot be used.
        """
        self.name = name
        self.cfg = cfg
        self.http1_parser = http1_parser
        tls = getattr(cfg, "tls_settings", None)
        https = cfg.https
        # one context for all targets: the files are read once per config load (and reload)
        self.ssl_context = client_context(tls, base or Path.cwd()) if tls is not None and https else None
        self.server_name = tls.server_name if tls is not None else None
        self.discovery = getattr(cfg, "discovery", None)
        if self.discovery is not None and self.discovery.resolvers is None:
            self.discovery = attrs.evolve(self.discovery, resolvers=list(resolvers))
        self.targets = [self._target(t.url, t.weight) for t in cfg.targets]
        self.tiers: list[Balancer] = []
        self._rebuild()
        self.failure_statuses = frozenset(cfg.circuit_breaker.failure_statuses)
        self.retries = cfg.retries
        self.budget = RetryBudget(cfg.retry_budget, cfg.min_retries_per_second)
        self.needs_key = cfg.balancer == "consistent-hash"
        self._nursery: trio.Nursery | None = None
        self._probes: dict[Target, trio.CancelScope] = {}

    def _target(self, url: str, weight: int, priority: int = 0, server_name: str | None = None) -> Target:
        """``server_name``: the DNS name a discovered address was found under; it is the SNI (unless
        ``tls.server_name`` is set) and the Host, as a static target's URL host would be."""
        cb = self.cfg.circuit_breaker
        t = Target(url, weight,
                   pool_for(url, self.cfg, self.http1_parser, ssl_context=self.ssl_context,
                            server_name=self.server_name or server_name, label=f"upstream {self.name!r} target {url}",
                            host_name=server_name),
                   CircuitBreaker(cb.failures, cb.open_seconds))
        t.priority = priority
        return t

    def _rebuild(self) -> None:
        """One balancer per priority (lowest first): a tier gets traffic only when every lower one has
        no available target. Static targets are all priority 0: one tier."""
        levels = sorted({t.priority for t in self.targets})
        self.tiers = [make_balancer(self.cfg.balancer, [t for t in self.targets if t.priority == p]) for p in levels]

    def pick(self, key: str | None, exclude: Sequence[Target] = ()) -> Target | None:
        """An available target not in ``exclude``: from the lowest priority that has one."""
        for tier in self.tiers:
            t = tier.pick(key, exclude)
            if t is not None:
                return t
        return None

    # ------------------------------------------------------------- background work

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """This upstream's background work for one config generation: DNS discovery and active
        health checks. ``started`` once the first resolution was tried (good or not), so a new
        generation starts with its addresses when DNS answers in time."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for t in self.targets:
                self._start_probe(t)
            if self.discovery is not None:
                await nursery.start(run_discovery, f"upstream {self.name!r}", self.discovery, self.set_endpoints)
            task_status.started()

    def _start_probe(self, target: Target) -> None:
        if self._nursery is None or not self.cfg.health_check.path:
            return
        scope = self._probes[target] = trio.CancelScope()
        check = self.cfg.health_check

        async def probe() -> None:
            with scope:
                await probe_loop(target, check)

        self._nursery.start_soon(probe, name=f"health check {target.url}")

    async def set_endpoints(self, found: list[Endpoint]) -> None:
        """Make the discovered ``found`` the targets: those that stay keep their pool, health and
        circuit (their weight and priority follow the records); new ones start healthy; removed
        ones take no new requests and their requests in flight finish (the pool closes idle
        connections now, busy ones when their response ends)."""
        scheme = self.discovery.scheme if self.discovery is not None else "http"
        wanted: dict[str, Endpoint] = {}
        for e in found:
            host = f"[{e.address}]" if ":" in e.address else e.address
            wanted.setdefault(f"{scheme}://{host}:{e.port}", e)
        before = [(t.url, t.weight, t.priority) for t in self.targets]
        current = {t.url: t for t in self.targets}
        kept: list[Target] = []
        for url, e in wanted.items():
            t = current.get(url)
            if t is None:
                t = self._target(url, e.weight, e.priority, e.server_name)
                self._start_probe(t)
            else:
                t.weight = e.weight
                t.priority = e.priority
            kept.append(t)
        removed = [t for url, t in current.items() if url not in wanted]
        added = [t.url for t in kept if t.url not in current]
        if [(t.url, t.weight, t.priority) for t in kept] == before:
            return
        self.targets = kept
        self._rebuild()
        if added or removed:
            log.info("upstream %r: targets now %s (added %s, removed %s)", self.name,
                     ", ".join(t.url for t in kept) or "none", ", ".join(added) or "none",
                     ", ".join(t.url for t in removed) or "none")
        for t in removed:
            scope = self._probes.pop(t, None)
            if scope is not None:
                scope.cancel()
            await t.pool.aclose()

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
            t = self.pick(key, tried)
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
        if not self.targets and self.discovery is not None:
            raise ServiceUnavailable(f"upstream {self.name!r} has no address: its DNS name has not resolved (yet)")
        raise ServiceUnavailable(f"no healthy target in upstream {self.name!r}")

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "balancer": self.cfg.balancer,
                               "targets": [t.status() for t in self.targets]}
        if self.discovery is not None:
            out["discovery"] = {"type": self.discovery.type, "name": self.discovery.name}
        return out

    async def aclose(self) -> None:
        for t in self.targets:
            await t.pool.aclose()
