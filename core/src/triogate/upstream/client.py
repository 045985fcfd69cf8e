"""The HTTP client plugins use (``gateway.http``): the core's pools, no second client.

Plugins call identity providers, JWKS endpoints or backends with it; connections are
pooled per origin and the same timeouts and error types apply as for proxying.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from ..headers import Headers
from ..messages import Body, Response
from .balancer import pool_for
from .pool import ConnectionPool, UpstreamTimeout

__all__ = ["HTTPClient", "Fetched"]


@attrs.define
class _PoolSettings:
    tls_verify: bool = True
    max_connections: int = 64
    max_idle: int = 16
    idle_timeout: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 30.0
    http1_parser: str = "auto"


@attrs.define
class Fetched:
    """A whole, buffered response from :meth:`HTTPClient.fetch`."""

    status: int
    headers: Headers
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


HeadersArg = Mapping[str, str] | Sequence[tuple[str, str]] | None


def _header_list(headers: HeadersArg) -> list[tuple[bytes, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]


class HTTPClient:
    def __init__(self, **settings: Any) -> None:
        self.settings = _PoolSettings(**settings)
        self._pools: dict[tuple[str, str, int | None], ConnectionPool] = {}

    def pool(self, url: str) -> ConnectionPool:
        u = urlsplit(url)
        key = (u.scheme, u.hostname or "", u.port)
        p = self._pools.get(key)
        if p is None:
            p = self._pools[key] = pool_for(f"{u.scheme}://{u.netloc}", self.settings, self.settings.http1_parser)
        return p

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersArg = None,
        body: bytes | Body | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send a request to an absolute URL; the response body streams (close it)."""
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"expected an absolute http(s) URL, got {url!r}")
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        b = body if isinstance(body, Body) or body is None else Body(body)
        pool = self.pool(url)
        if timeout is None:
            return await pool.request(method, target, _header_list(headers), b)
        with trio.move_on_after(timeout):
            return await pool.request(method, target, _header_list(headers), b)
        raise UpstreamTimeout(f"{method} {u.scheme}://{u.netloc} timed out")

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersArg = None,
        body: bytes | None = None,
        timeout: float = 10.0,
        limit: int = 1 << 20,
    ) -> Fetched:
        """Send a request and read the whole response (at most ``limit`` bytes) within ``timeout``."""
        with trio.move_on_after(timeout):
            resp = await self.request(method, url, headers=headers, body=body)
            try:
                content = await resp.body.read(limit)
            finally:
                await resp.body.aclose()
            return Fetched(resp.status, resp.headers, content)
        raise UpstreamTimeout(f"{method} {url.split('?')[0]} timed out")

    async def aclose(self) -> None:
        for p in self._pools.values():
            await p.aclose()
        self._pools.clear()
