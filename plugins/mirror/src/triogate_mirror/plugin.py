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

# never copied: hop-by-hop and framing fields (the shadow's connection frames its own request),
# Host (the shadow's client sets the shadow's authority) and the forwarding fields, rebuilt below
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization", "content-length", "expect", "host", "http2-settings",
})
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "via"})


@attrs.define
class MirrorStats:
    """Counters of one plugin instance (the prometheus plugin has no public API for extra metrics)."""

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
        self.rid_header = gcfg.request_id_header.lower()
        self.forward_mode = gcfg.forwarded_headers
        self.stats = MirrorStats()
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

    @triogate.hookimpl(trylast=True)
    async def transform(self, ctx: triogate.Context) -> None:
        ctx.log_extra["mirrored"] = False
        if not self.sampled(ctx):
            return
        tasks = self._tasks or self.gateway.nursery
        if tasks is None:  # not started (e.g. a config only being validated)
            return
        if self.stats.in_flight >= self.config.max_in_flight:
            self.stats.dropped += 1
            ctx.log_extra["mirror_skip"] = "in_flight_limit"
            return
        body = ctx.request.body
        # what the core's forward step does next anyway: a body that ends within it arrives whole
        await body.prime(self.prime_bytes)
        if not body.is_buffered or len(body.data or b"") > self.body_limit:
            self.stats.skipped += 1
            ctx.log_extra["mirror_skip"] = "body_too_large"
            return
        data = body.data or b""
        req = ctx.request
        target = self.upstream_path(ctx) + ("?" + req.query if req.query else "")
        headers = self.upstream_headers(ctx)
        try:
            tasks.start_soon(self._send, req.method, target, headers, data, self.gateway.upstream(self.config.upstream))
        except RuntimeError:  # the config's task group already closed (its scope ended)
            self.stats.dropped += 1
            ctx.log_extra["mirror_skip"] = "closed"
            return
        self.stats.in_flight += 1
        ctx.log_extra["mirrored"] = True

    async def _send(self, method: str, target: str, headers: list[tuple[bytes, bytes]], data: bytes,
                    upstream: Any) -> None:
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
                    self.gateway.log.debug("mirror to %s failed: %s: %s", self.config.upstream, type(exc).__name__, exc)
                    return
            if scope.cancelled_caught:
                self.stats.failed += 1
            else:
                self.stats.mirrored += 1
        finally:
            self.stats.in_flight -= 1

    # ------------------------------------------------------------------ the request as forwarded

    def upstream_path(self, ctx: triogate.Context) -> str:
        """The path the primary receives: the route's ``rewrite`` or ``strip_prefix`` applied.

        The core computes it privately; this follows the same rules from the public route config.
        """
        route = ctx.route
        assert route is not None
        cfg = route.config
        path = ctx.request.path
        if cfg.rewrite is not None:
            values = dict(ctx.params)
            values["rest"] = ctx.rest.lstrip("/")
            path = cfg.rewrite
            for k, v in values.items():
                path = path.replace("{" + k + "}", v)
            return path.replace("//", "/")
        if cfg.strip_prefix:
            prefix = cfg.strip_prefix.rstrip("/")
            segments = path.split("/")
            view = [s.split(";", 1)[0].split("%3B", 1)[0] for s in segments] if cfg.allow_matrix_params else segments
            want = prefix.split("/")
            if cfg.case_insensitive:
                view, want = [s.lower() for s in view], [s.lower() for s in want]
            if view[:len(want)] == want:
                path = "/".join([""] + segments[len(want):]) if len(segments) > len(want) else "/"
        return path

    def upstream_headers(self, ctx: triogate.Context) -> list[tuple[bytes, bytes]]:
        """End-to-end headers as the primary gets them, plus forwarding fields, request id and marker.

        Forwarding fields a client sent are replaced by the gateway's own (as for an untrusted peer).
        """
        req = ctx.request
        drop = set(_HOP_BY_HOP) | _FORWARDING | {self.rid_header, self.config.header.lower()}
        raw = req.headers.raw  # lower-case names
        for n, v in raw:
            if n == b"connection":
                drop.update(t.strip().lower() for t in v.decode("latin-1").split(",") if t.strip())
        out = [(n, v) for n, v in raw if n.decode("latin-1") not in drop]
        if self.forward_mode in ("x-forwarded", "both"):
            out.append((b"x-forwarded-for", ctx.client_addr.encode()))  # the direct peer, as the core sends
            out.append((b"x-forwarded-proto", req.scheme.encode()))
            if req.authority:
                out.append((b"x-forwarded-host", req.authority.encode("latin-1")))
        out.append((self.rid_header.encode(), ctx.request_id.encode()))
        out.append((self.config.header.lower().encode(), self.config.header_value.encode()))
        return out

    def __repr__(self) -> str:
        return f"<MirrorPlugin to {self.config.upstream!r} {self.config.percentage}%>"
