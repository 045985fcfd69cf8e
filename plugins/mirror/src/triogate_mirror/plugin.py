"""The mirror plugin: a sample of requests copied, fire-and-forget, to a shadow upstream.

The copy is taken last in the ``transform`` phase (``trylast``), so it is the request the
primary upstream receives: after auth and every transform, with the route's ``rewrite`` /
``strip_prefix`` applied to the path. Bodies are mirrored only when the core buffers them
anyway (they end within ``gateway.limits.body_buffer_bytes``) and fit ``max_body_bytes``:
the plugin primes the body exactly as the core's forward step would, so it never holds more
of a client's body than the core does, and a streamed body is never teed.

Copies run in one task group per loaded config (``gateway.shared``), each bounded by
``timeout``; the group is cancelled when the config's scope closes (after the drain on a
reload or a stop). A slow or dead shadow therefore never delays or fails the client's request.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import triogate

from .config import MirrorConfig

# the core's upstream request minus what belongs to the primary's connection: the shadow's client
# sets its own Host, and a copy is never an upgrade
_NOT_COPIED = frozenset({b"host", b"connection", b"upgrade"})
COUNTER = "triogate_mirror_requests_total"


@attrs.define
class MirrorStats:
    """Counters of one plugin instance (tests read them; ``/metrics`` shows the gateway-wide
    ``triogate_mirror_requests_total`` by route, shadow upstream and result)."""

    mirrored: int = 0  #: copies the shadow answered (the answer is discarded)
    dropped: int = 0  #: copies not sent: ``max_in_flight`` copies were under way
    skipped: int = 0  #: copies not sent: the body was larger than the limit (or streamed)
    failed: int = 0  #: copies sent that got no answer: connection error or ``timeout``
    in_flight: int = 0  #: copies under way now


@asynccontextmanager
async def _task_group() -> AsyncIterator[trio.Nursery]:
    """A nursery for the copies of one loaded config; leaving it cancels those still running."""
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


class MirrorPlugin(triogate.Plugin):
    priority = 10
    Config = MirrorConfig

    def __init__(self, config: MirrorConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        if config.upstream not in gateway.upstreams:
            known = ", ".join(sorted(gateway.upstreams)) or "none configured"
            raise ValueError(f"upstream: unknown upstream {config.upstream!r} (known: {known})")
        gcfg = gateway.config.gateway
        #: the core primes (reads ahead) this much of a body before it forwards it
        self.prime_bytes = gcfg.limits.body_buffer_bytes
        self.body_limit = min(config.max_body_bytes, self.prime_bytes)
        self.stats = MirrorStats()
        self.counter = gateway.counter(
            COUNTER, "Requests sampled for mirroring by result: mirrored (the shadow answered), dropped "
            "(max_in_flight copies under way), too_large (body above max_body_bytes or streamed), failed "
            "(no answer: error or timeout).", ("route", "upstream", "result"))
        self._tasks: trio.Nursery | None = None
        self._threshold = config.percentage / 100.0

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices) -> None:
        self._tasks = await gateway.shared(("triogate_mirror", "tasks"), _task_group)

    def sampled(self, ctx: triogate.Context) -> bool:
        """Whether this request is mirrored: at random, or by a hash of its request id."""
        if self._threshold >= 1.0:
            return True
        if self._threshold <= 0.0:
            return False
        if self.config.deterministic:
            digest = hashlib.blake2b(ctx.request_id.encode(), digest_size=8).digest()
            return int.from_bytes(digest, "big") / 2**64 < self._threshold
        return random.random() < self._threshold

    def count(self, route: str, result: str) -> None:
        self.counter.inc(route, self.config.upstream, result)

    @triogate.hookimpl(trylast=True)
    async def transform(self, ctx: triogate.Context) -> None:
        ctx.log_extra["mirrored"] = False
        if not self.sampled(ctx):
            return
        tasks = self._tasks or self.gateway.nursery
        if tasks is None:  # not started (e.g. a config only being validated)
            return
        route = ctx.route.name if ctx.route is not None else ""
        if self.stats.in_flight >= self.config.max_in_flight:
            self.stats.dropped += 1
            self.count(route, "dropped")
            ctx.log_extra["mirror_skip"] = "in_flight_limit"
            return
        body = ctx.request.body
        # what the core's forward step does next anyway: a body that ends within it arrives whole
        await body.prime(self.prime_bytes)
        if not body.is_buffered or len(body.data or b"") > self.body_limit:
            self.stats.skipped += 1
            self.count(route, "too_large")
            ctx.log_extra["mirror_skip"] = "body_too_large"
            return
        data = body.data or b""
        req = ctx.request
        target, headers = self.upstream_request(ctx)
        try:
            tasks.start_soon(self._send, req.method, target, headers, data, self.gateway.upstream(self.config.upstream),
                             route)
        except RuntimeError:  # the config's task group already closed (its scope ended)
            self.stats.dropped += 1
            self.count(route, "dropped")
            ctx.log_extra["mirror_skip"] = "closed"
            return
        self.stats.in_flight += 1
        ctx.log_extra["mirrored"] = True

    async def _send(self, method: str, target: str, headers: list[tuple[bytes, bytes]], data: bytes,
                    upstream: Any, route: str) -> None:
        """One copy: sent, its answer read and discarded, all within ``timeout``."""
        try:
            with trio.move_on_after(self.config.timeout) as scope:
                try:
                    body = triogate.Body(data) if data else None  # as the core: an empty body is no body
                    resp, _ = await upstream.request(method, target, headers, body)
                    try:
                        async for _chunk in resp.body:  # read to the end: the connection goes back to the pool
                            pass
                    finally:
                        await resp.body.aclose()
                except Exception as exc:  # noqa: BLE001 - a copy's failure is counted, never the client's or the group's
                    self.stats.failed += 1
                    self.count(route, "failed")
                    self.gateway.log.debug("mirror to %s failed: %s: %s", self.config.upstream, type(exc).__name__, exc)
                    return
            if scope.cancelled_caught:
                self.stats.failed += 1
                self.count(route, "failed")
            else:
                self.stats.mirrored += 1
                self.count(route, "mirrored")
        finally:
            self.stats.in_flight -= 1

    # ------------------------------------------------------------------ the request as forwarded

    def upstream_request(self, ctx: triogate.Context) -> tuple[str, list[tuple[bytes, bytes]]]:
        """Target and headers as the primary receives them (the core's own), as a plain request to the
        shadow: no Host (the shadow's client sets the shadow's), no upgrade, and the marker header."""
        target, headers = ctx.gateway.upstream_request(ctx)
        marker = self.config.header.lower().encode()
        out = [(n, v) for n, v in headers if n not in _NOT_COPIED and n != marker]
        out.append((marker, self.config.header_value.encode()))
        return target, out

    def __repr__(self) -> str:
        return f"<MirrorPlugin to {self.config.upstream!r} {self.config.percentage}%>"
