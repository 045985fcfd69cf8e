"""Proxy semantics (RFC 9110 §7.6): hop-by-hop removal, Via, X-Forwarded-*, Forwarded,
client address behind trusted proxies, request ids."""

from __future__ import annotations

import ipaddress
import os
import random
import re
from collections.abc import Iterable

from .headers import Headers

__all__ = ["HOP_BY_HOP", "TrustedProxies", "strip_hop_by_hop", "forward_request_headers", "new_request_id",
           "valid_request_id"]

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
    b"upgrade", b"proxy-authenticate", b"proxy-authorization",
})
# framing and expectations the gateway handles itself on each side
_REQUEST_DROP = HOP_BY_HOP | {b"content-length", b"expect", b"host", b"http2-settings"}  # RFC 9113 §3.1
_RESPONSE_DROP = HOP_BY_HOP


def connection_tokens(raw: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for n, v in raw:
        if n == b"connection":
            tokens.update(t.strip().lower() for t in v.split(b",") if t.strip())
    return frozenset(tokens)


def strip_hop_by_hop(raw: list[tuple[bytes, bytes]], drop: frozenset[bytes] = _RESPONSE_DROP) -> list[tuple[bytes, bytes]]:
    """Drop hop-by-hop fields and every field the Connection header names."""
    for n, _ in raw:
        if n == b"connection":
            extra = connection_tokens(raw)
            if extra:
                drop = drop | extra
            break
    return [(n, v) for n, v in raw if n not in drop]


class TrustedProxies:
    """Which peers' forwarding headers are believed, and the client address that follows."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, addr: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def client_ip(self, peer: str, headers: Headers) -> str:
        """Walk X-Forwarded-For from the right, skipping trusted proxies (nginx real_ip_recursive)."""
        if not self.networks or not self.trusts(peer):
            return peer
        hops = headers.get_list("x-forwarded-for")
        for hop in reversed(hops):
            if not self.trusts(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return hops[0] if hops else peer


def _forwarded_node(ip: str) -> str:
    return f'"[{ip}]"' if ":" in ip else ip


_FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"via"})
_HOST_TOKEN_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


def forward_request_headers(
    headers: Headers,
    *,
    peer: str,
    trusted: bool,
    scheme: str,
    host: str | None,
    mode: str,
    via: bytes | None,
    http_version: str,
) -> list[tuple[bytes, bytes]]:
    """The header list sent upstream: end-to-end fields plus the forwarding ones.

    Hop-by-hop fields (and those named in ``Connection``), framing, ``Expect`` and ``Host``
    are dropped. Forwarding fields a client sent (``X-Forwarded-*``, ``Forwarded``) pass
    on only from a trusted peer, and are appended to per ``mode``; from anyone else they
    are dropped whatever the mode, so an upstream never believes a spoofed address.
    ``Via`` is always appended to (when ``via`` is set).
    """
    raw = headers.raw
    drop = _REQUEST_DROP
    for n, v in raw:
        if n == b"connection":
            drop = drop | connection_tokens(raw)
            break
    out: list[tuple[bytes, bytes]] = []
    prior: dict[bytes, list[bytes]] = {}
    for n, v in raw:
        if n in drop:
            continue
        if n in _FORWARDING:
            prior.setdefault(n, []).append(v)
            continue
        out.append((n, v))
    if not prior and mode == "x-forwarded":  # the common case, without lookups
        out.append((b"x-forwarded-for", peer.encode()))
        out.append((b"x-forwarded-proto", scheme.encode()))
        if host:
            out.append((b"x-forwarded-host", host.encode("latin-1")))
        if via is not None:
            out.append((b"via", http_version.encode() + b" " + via))
        return out
    xf = mode in ("x-forwarded", "both")
    fw = mode in ("forwarded", "both")
    if trusted:  # what a trusted proxy sent and this mode does not rewrite passes on as it came
        for name in (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"):
            if not xf:
                out.extend((name, v) for v in prior.get(name, ()))
        if not fw:
            out.extend((b"forwarded", v) for v in prior.get(b"forwarded", ()))
    if xf:
        xff = b", ".join(prior.get(b"x-forwarded-for", ())) if trusted else b""
        xfp = prior.get(b"x-forwarded-proto", [None])[0] if trusted else None
        xfh = prior.get(b"x-forwarded-host", [None])[0] if trusted else None
        out.append((b"x-forwarded-for", (xff + b", " if xff else b"") + peer.encode()))
        out.append((b"x-forwarded-proto", xfp or scheme.encode()))
        if xfh or host:
            out.append((b"x-forwarded-host", xfh or (host or "").encode("latin-1")))
    if fw:
        before = b", ".join(prior.get(b"forwarded", ())) if trusted else b""
        elem = f"for={_forwarded_node(peer)};proto={scheme}".encode()
        if host and _HOST_TOKEN_BYTES.issuperset(host.encode("latin-1")):
            elem += b";host=" + host.encode("latin-1")
        out.append((b"forwarded", (before + b", " if before else b"") + elem))
    if via is not None:
        prior_via = b", ".join(prior.get(b"via", ()))
        out.append((b"via", (prior_via + b", " if prior_via else b"") + http_version.encode() + b" " + via))
    elif b"via" in prior:
        out.extend((b"via", v) for v in prior[b"via"])
    return out


_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{8,128}")


def valid_request_id(value: str | None) -> bool:
    return value is not None and _REQUEST_ID_RE.fullmatch(value) is not None


_rng = random.Random(os.urandom(16))  # seeded from the OS once; re-seeded in forked workers below
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(16)))


def new_request_id() -> str:
    """96 random bits as hex. Ids need to be unique, not secret: no system call per request."""
    return "%024x" % _rng.getrandbits(96)
