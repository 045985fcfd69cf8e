"""Binding listening sockets (the front ends on them are started by :mod:`triogate.serving`)."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import attrs
import trio

from .config import ListenerConfig

__all__ = ["BoundListener", "bind_socket", "open_listeners", "server_ssl_context"]


@attrs.define
class BoundListener:
    cfg: ListenerConfig
    sock: trio.socket.SocketType

    @property
    def bound(self) -> tuple[str, int]:
        addr = self.sock.getsockname()
        return addr[0], addr[1]


def server_ssl_context(cfg: ListenerConfig, alpn: list[str]) -> ssl.SSLContext | None:
    if not cfg.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    ctx.set_alpn_protocols(alpn)
    return ctx


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
