"""A keep-alive client bound to one gateway, and raw bytes for protocol tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from ..messages import Response
from ..upstream import Fetched, HTTPClient

__all__ = ["GatewayClient", "raw_request"]


class GatewayClient:
    """A keep-alive HTTP client bound to one gateway (the core's own client)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = HTTPClient(read_timeout=30.0)

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | str | None = None, json_body: Any = None, timeout: float = 30.0, limit: int = 1 << 26,
    ) -> Fetched:
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs = list(headers.items() if isinstance(headers, Mapping) else headers or [])
            hdrs.append(("content-type", "application/json"))
            headers = hdrs
        if isinstance(body, str):
            body = body.encode()
        return await self.http.fetch(method, self.base_url + path, headers=headers, body=body, timeout=timeout,
                                     limit=limit)

    async def stream(self, method: str, path: str, **kwargs: Any) -> Response:
        """Like :meth:`request` but the response body streams (``await resp.body.aclose()`` after)."""
        return await self.http.request(method, self.base_url + path, **kwargs)

    async def get(self, path: str, **kw: Any) -> Fetched:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Fetched:
        return await self.request("POST", path, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()


async def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0,
                      read_until_close: bool = True) -> bytes:
    """Send raw bytes and return everything the server answers (until it closes or ``timeout``)."""
    stream = await trio.open_tcp_stream(host, port)
    out = bytearray()
    try:
        await stream.send_all(data)
        with trio.move_on_after(timeout):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                out += chunk
                if not read_until_close and b"\r\n\r\n" in out:
                    break
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(out)

