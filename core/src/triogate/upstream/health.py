"""Passive health (circuit breaker) and active health checks for upstream targets.

The circuit breaker's rules are one table, like h11's ``_state.py``::

    state       event      -> new state
    closed      failure*N  -> open        (N consecutive failures)
    closed      success    -> closed      (failure count reset)
    open        cool-down  -> half-open   (open_seconds elapsed; one probe request allowed)
    half-open   success    -> closed
    half-open   failure    -> open
    half-open   abandoned  -> half-open   (probe cancelled or the client's fault: the next request probes)

Whose fault an attempt's outcome is, is one table too (:data:`FAULTS`, :func:`verdict`):
only what the target did counts. A client can make a request fail in many ways (a field
our serializer refuses, a body it abandons or garbles mid-stream, a body too large, going
away so the request is cancelled); if those counted, a handful of crafted requests would
keep the circuit open for everyone.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import trio

from ..messages import BodyTooLarge
from .pool import PoolTimeout, RequestNotSendable, UpstreamError, UpstreamTimeout, UpstreamTLSError

if TYPE_CHECKING:
    from .balancer import Target

__all__ = ["CircuitState", "CircuitBreaker", "Verdict", "FAULTS", "verdict", "status_verdict", "run_health_checks",
           "probe_loop"]


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Verdict(enum.Enum):
    SUCCESS = "success"    # the target answered well: closes the circuit, resets the count
    FAILURE = "failure"    # the target's fault: counts toward opening the circuit
    NONE = "none"          # no verdict on the target: counts nothing, frees a half-open probe slot


#   raised by an attempt             verdict           why
FAULTS: tuple[tuple[type[BaseException], Verdict], ...] = (
    (RequestNotSendable, Verdict.NONE),    # our serializer refused the request; nothing reached the target
    (PoolTimeout, Verdict.NONE),           # the gateway's own connection limit
    (BodyTooLarge, Verdict.NONE),          # the client's body
    (UpstreamTimeout, Verdict.FAILURE),    # connect, read or write timeout
    (UpstreamTLSError, Verdict.FAILURE),   # its certificate did not verify, or it refused ours: its setup
    (UpstreamError, Verdict.FAILURE),      # refused, reset, closed early, invalid response
)
# Anything else is Verdict.NONE: the client sent a bad body or went away mid-body
# (pipeline.ClientError), the request was cancelled (client gone, total timeout), a bug.


def verdict(exc: BaseException) -> Verdict:
    """Whose fault is an attempt that raised ``exc``? First matching row of :data:`FAULTS`."""
    for kind, v in FAULTS:
        if isinstance(exc, kind):
            return v
    return Verdict.NONE


def status_verdict(status: int, failure_statuses: frozenset[int]) -> Verdict:
    """A response is the target's failure when its status is in ``failure_statuses`` (default 5xx gateway errors)."""
    return Verdict.FAILURE if status in failure_statuses else Verdict.SUCCESS


class CircuitBreaker:
    __slots__ = ("threshold", "open_seconds", "state", "failures", "opened_at", "probe_in_flight", "clock")

    def __init__(self, threshold: int, open_seconds: float, clock: object = None) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probe_in_flight = False

    def allows(self) -> bool:
        """May a request go to this target now? Moves open -> half-open after the cool-down."""
        if self.state is CircuitState.CLOSED or self.threshold <= 0:
            return True
        if self.state is CircuitState.OPEN:
            if trio.current_time() - self.opened_at < self.open_seconds:
                return False
            self.state = CircuitState.HALF_OPEN
            self.probe_in_flight = False
        # half-open: exactly one probe at a time
        return not self.probe_in_flight

    def on_attempt(self) -> None:
        if self.state is CircuitState.HALF_OPEN:
            self.probe_in_flight = True

    def on_abandon(self) -> None:
        """An attempt ended without a verdict on the target (cancelled, client error): free the probe slot."""
        if self.state is CircuitState.HALF_OPEN:
            self.probe_in_flight = False

    def on_success(self) -> None:
        self.failures = 0
        if self.state is not CircuitState.CLOSED:
            self.state = CircuitState.CLOSED
            self.probe_in_flight = False

    def record(self, v: Verdict) -> None:
        if v is Verdict.SUCCESS:
            self.on_success()
        elif v is Verdict.FAILURE:
            self.on_failure()
        else:
            self.on_abandon()

    def on_failure(self) -> None:
        if self.threshold <= 0:
            return
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.threshold:
            self.state = CircuitState.OPEN
            self.opened_at = trio.current_time()
            self.probe_in_flight = False


async def run_health_checks(targets: list[Target], cfg: object) -> None:
    """Probe every target with GET ``cfg.path`` each ``cfg.interval`` seconds, forever."""
    async with trio.open_nursery() as nursery:
        for target in targets:
            nursery.start_soon(probe_loop, target, cfg)


async def probe_loop(target: Target, cfg: object) -> None:
    """Probe one target until cancelled (a discovered target that DNS no longer names is)."""
    ok_run = 0
    bad_run = 0
    healthy_statuses = frozenset(cfg.healthy_statuses)  # type: ignore[attr-defined]
    while True:
        ok = False
        with trio.move_on_after(cfg.timeout):  # type: ignore[attr-defined]
            try:
                resp = await target.pool.request("GET", cfg.path, [(b"user-agent", b"triogate-health")])  # type: ignore[attr-defined]
                try:
                    await resp.body.read(1 << 20)
                finally:
                    await resp.body.aclose()
                ok = resp.status in healthy_statuses
            except Exception:  # noqa: BLE001 - any failure is an unhealthy probe
                ok = False
        if ok:
            ok_run, bad_run = ok_run + 1, 0
            if not target.healthy and ok_run >= cfg.healthy_threshold:  # type: ignore[attr-defined]
                target.healthy = True
                target.breaker.on_success()
        else:
            ok_run, bad_run = 0, bad_run + 1
            if target.healthy and bad_run >= cfg.unhealthy_threshold:  # type: ignore[attr-defined]
                target.healthy = False
        await trio.sleep(cfg.interval)  # type: ignore[attr-defined]
