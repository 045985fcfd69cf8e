"""Binding listening sockets (the front ends on them are started by :mod:`triogate.serving`)."""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

import attrs
import trio

from .config import ListenerConfig
from .tlsfiles import TLSFileError, server_context

__all__ = ["BoundListener", "ListenerTLS", "bind_socket", "open_listeners", "server_ssl_context"]

log = logging.getLogger("triogate.server")


@attrs.define
class BoundListener:
    cfg: ListenerConfig
    sock: trio.socket.SocketType

    @property
    def bound(self) -> tuple[str, int]:
        addr = self.sock.getsockname()
        return addr[0], addr[1]


def server_ssl_context(cfg: ListenerConfig, alpn: list[str]) -> ssl.SSLContext | None:
    """The listener's TLS context (None without TLS), client certificate verification included;
    built again on every reload, so new connections see rotated certificate, CA and CRL files."""
    if not cfg.tls_cert:
        return None
    return server_context(cfg.tls_cert, cfg.tls_key, alpn, client_auth=cfg.client_auth,
                          client_ca=cfg.client_ca, client_crl=cfg.client_crl)


class ListenerTLS:
    """A listener's TLS context, built again when the gateway's config is reloaded.

    ``listen`` itself needs a restart, but the files it names are re-read: a rotated server
    certificate, client CA bundle or CRL applies to new connections after a reload (the reload's
    config check already built the context once, so a bad file refused the reload).
    """

    def __init__(self, cfg: ListenerConfig, alpn: list[str], gcfg: object,
                 context: ssl.SSLContext | None = None) -> None:
        self.cfg = cfg
        self.alpn = alpn
        self._gcfg = gcfg
        self.context = context if context is not None else server_ssl_context(cfg, alpn)

    def current(self, gcfg: object) -> ssl.SSLContext | None:
        """The context for a new connection while ``gcfg`` (the ``[gateway]`` table) is the config."""
        if self.context is not None and gcfg is not self._gcfg:
            self._gcfg = gcfg
            try:
                self.context = server_ssl_context(self.cfg, self.alpn)
            except (TLSFileError, ssl.SSLError, OSError) as exc:  # a file changed after the reload's check
                log.error("listener %s: TLS files not reloaded, keeping the previous ones: %s", self.cfg.address, exc)
        return self.context


def bind_socket(cfg: ListenerConfig, reuse_port: bool = False) -> socket.socket:
    """A listening stdlib socket (the supervisor binds these once and hands them to workers)."""
    host, port = cfg.host, cfg.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def open_listeners(cfgs: list[ListenerConfig], *, sockets: list[Any] | None = None) -> list[BoundListener]:
    out = []
    for i, cfg in enumerate(cfgs):
        raw = sockets[i] if sockets is not None else bind_socket(cfg)
        out.append(BoundListener(cfg, trio.socket.from_stdlib_socket(raw)))
    return out
