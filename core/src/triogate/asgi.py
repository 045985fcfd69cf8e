"""The pipeline as an ASGI app: what hypercorn serves for HTTP/2 (see h2listener.py), and what
anyone can mount under another ASGI server.

The same :class:`~triogate.app.Gateway` handles requests from both front-ends; only the
byte plumbing differs. Requests get the native listener's checks before the pipeline
(field syntax, Host, the declared body length), whatever server parsed them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import trio

from .app import Gateway
from .config import load_config
from .headers import Headers
from .http1.rules import valid_header, valid_host, valid_name
from .messages import Body, BodyTooLarge, Request
from .pacing import BodyPacer, RequestTimeout
from .pipeline import ClientError
from .problem import problem
from .proxy import new_request_id
from .routing import BadPath, normalize_path

__all__ = ["ASGIApp", "asgi_app"]

log = logging.getLogger("triogate.asgi")
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"upgrade"})


class ASGIApp:
    """ASGI 3 application over a Gateway.

    Mounted under another ASGI server, the lifespan protocol starts and stops the
    gateway (plugin startup/shutdown hooks run then).
    """

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websocket over HTTP/2 is not proxied; the native listener tunnels HTTP/1.1 upgrades
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await self.gateway.start(nursery)
                    except Exception as exc:  # noqa: BLE001
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.gateway.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    nursery.cancel_scope.cancel()
                    return

    def _check(self, scope: dict[str, Any], raw_path: bytes) -> tuple[Headers, str, int | None]:
        """The native listener's rules for a request another server parsed (HTTP/2 through hypercorn):
        (headers, normalized path, declared body length) or :class:`_Refused`."""
        if not valid_name(scope["method"].encode("latin-1")):
            raise _Refused(400, "invalid method")
        try:
            text = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise _Refused(400, "non-ASCII request target") from None
        if not text.startswith("/") or "#" in text:
            raise _Refused(400, "unsupported request target")
        try:
            path = normalize_path(text)
        except BadPath as exc:
            raise _Refused(400, f"bad path: {exc}") from None
        raw = [(bytes(n).lower(), bytes(v)) for n, v in scope["headers"]]
        limits = self.gateway.config.gateway.limits
        if len(raw) > limits.max_headers:
            raise _Refused(431, "too many header fields")
        hosts = 0
        cl: bytes | None = None
        for name, value in raw:
            if not valid_header(name, value):
                raise _Refused(400, "invalid header field")
            if name == b"host":
                hosts += 1
                if not valid_host(value):
                    raise _Refused(400, "invalid Host header")
            elif name == b"content-length":
                if cl is not None or not value.isdigit() or len(value) > 18:
                    raise _Refused(400, "bad Content-Length")
                cl = value
        if hosts > 1:
            raise _Refused(400, "more than one Host header")
        headers = Headers.from_raw(raw)
        if not hosts and scope.get("server"):
            server = scope["server"]
            headers.add("host", f"{server[0]}:{server[1]}")
        length: int | None = None
        if cl is not None:
            length = int(cl)
        elif scope.get("http_version") == "1.1" and "transfer-encoding" not in headers:
            length = 0
        limit = limits.max_body_bytes
        if limit and length is not None and length > limit:
            raise _Refused(413, f"request body larger than {limit} bytes")
        return headers, path, length

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        try:
            headers, path, length = self._check(scope, raw_path)
        except _Refused as exc:  # never reaches the pipeline
            rid = new_request_id()
            rid_header = self.gateway.config.gateway.request_id_header.lower()
            resp = problem(exc.status, exc.detail, request_id=rid, headers=[(rid_header, rid)])
            await _send_simple(send, resp.status, resp.headers.raw, resp.body.data or b"")
            return
        gcfg = self.gateway.config.gateway
        body = Body(_receive_body(receive, length, gcfg.limits, gcfg.timeouts), length) if length != 0 else Body(b"")
        client = scope.get("client")
        request = Request(
            scope["method"], path, scope.get("query_string", b"").decode("latin-1"), headers, body,
            http_version=scope.get("http_version", "1.1"), scheme=scope.get("scheme", "http"),
            client=(client[0], client[1]) if client else None, raw_path=raw_path.decode("latin-1"),
        )
        ctx, resp = await self.gateway.handle(request)
        try:
            hdrs = [(n, v) for n, v in resp.headers.raw if n not in _FRAMING]
            if resp.body.is_buffered and request.method != "HEAD":
                hdrs.append((b"content-length", str(len(resp.body.data or b"")).encode()))
            elif resp.body.length is not None:
                hdrs.append((b"content-length", str(resp.body.length).encode()))
            await send({"type": "http.response.start", "status": resp.status, "headers": hdrs})
            if request.method != "HEAD" and resp.status not in (204, 304):
                async for chunk in resp.body:
                    ctx.bytes_out += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception as exc:  # noqa: BLE001 - client went away or upstream broke mid-body
            ctx.error = ctx.error or f"response aborted: {type(exc).__name__}"
        finally:  # also when hypercorn cancels the request because its connection ended
            with trio.CancelScope(shield=True):
                await resp.body.aclose()
                ctx.bytes_in = request.body.length or 0
                await self.gateway.finish(ctx)


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def _receive_body(receive: Any, length: int | None, limits: Any, timeouts: Any) -> AsyncIterator[bytes]:
    """The request body, paced like the native listener's reads (pacing.py), never more than the
    declared Content-Length (nor the body limit): a body that disagrees with it fails the request.

    Messages the server has already queued are joined into one chunk (when ``receive`` is
    a trio memory channel's, as with hypercorn's trio worker), so a stream of tiny DATA
    frames does not become one upstream write per frame.
    """
    nowait = getattr(getattr(receive, "__self__", None), "receive_nowait", None)
    pacer = BodyPacer(limits, timeouts, trio.current_time())
    limit = limits.max_body_bytes
    received = 0
    more = True
    while more:
        started = trio.current_time()
        with trio.CancelScope(deadline=pacer.deadline(started)) as cs:
            message = await receive()
        if cs.cancelled_caught:
            raise RequestTimeout(pacer.reason())
        parts: list[bytes] = []
        while True:
            if message["type"] == "http.disconnect":
                raise ClientError("client disconnected mid-body")
            chunk = message.get("body", b"")
            if chunk:
                parts.append(chunk)
            more = message.get("more_body", False)
            if not more or nowait is None:
                break
            try:
                message = nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        data = b"".join(parts) if len(parts) != 1 else parts[0]
        pacer.read(started, trio.current_time(), len(data))
        received += len(data)
        if length is not None and received > length:
            raise ClientError("request body longer than its Content-Length")
        if limit and received > limit:
            raise BodyTooLarge(limit)
        if data:
            yield data
    if length is not None and received != length:
        raise ClientError("request body shorter than its Content-Length")


async def _send_simple(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def asgi_app(config_path: str = "gateway.toml") -> ASGIApp:
    """Build an ASGI app from a config file, for mounting under any ASGI server."""
    return ASGIApp(Gateway(load_config(config_path), config_path=config_path))
