"""The pipeline as an ASGI app, and the HTTP/2 listener that serves it with hypercorn.

The same :class:`~triogate.app.Gateway` handles requests from both front-ends;
only the byte plumbing differs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import trio

from .config import ListenerConfig
from .headers import Headers
from .http1 import ProtocolError
from .http1.rules import check_fields
from .messages import Body, Request
from .pacing import BodyPacer, RequestTimeout
from .problem import problem
from .proxy import new_request_id
from .routing import BadPath, normalize_path

__all__ = ["ASGIApp", "H2Server", "asgi_app"]

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

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        try:
            path = normalize_path(raw_path.decode("ascii"))
        except (BadPath, UnicodeDecodeError) as exc:
            resp = problem(400, f"bad path: {exc}", request_id=new_request_id())
            await _send_simple(send, resp.status, resp.headers.raw, resp.body.data or b"")
            return
        fields = [(bytes(n).lower(), bytes(v)) for n, v in scope["headers"]]
        try:
            check_fields(fields)  # the listener's rule: nothing accepted may fail to serialize upstream
        except ProtocolError as exc:
            rid = new_request_id()
            resp = problem(400, exc.detail, request_id=rid,
                           headers=[(self.gateway.pipeline.request_id_header, rid)])
            await _send_simple(send, resp.status, resp.headers.raw, resp.body.data or b"")
            return
        headers = Headers.from_raw(fields)
        if "host" not in headers and scope.get("server"):
            server = scope["server"]
            headers.add("host", f"{server[0]}:{server[1]}")
        length: int | None = None
        cl = headers.get("content-length")
        if cl is not None and cl.isdigit():
            length = int(cl)
        elif scope.get("http_version") == "1.1" and "transfer-encoding" not in headers:
            length = 0
        gcfg = self.gateway.config.gateway
        body = Body(_receive_body(receive, gcfg.limits, gcfg.timeouts), length) if length != 0 else Body(b"")
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
        finally:
            await resp.body.aclose()
            ctx.bytes_in = request.body.length or 0
            await self.gateway.finish(ctx)


async def _receive_body(receive: Any, limits: Any, timeouts: Any) -> AsyncIterator[bytes]:
    """Body messages as byte chunks, paced like the native listener's reads (pacing.py).

    Messages the server has already queued are joined into one chunk (when ``receive`` is
    a trio memory channel's, as with hypercorn's trio worker), so a stream of tiny DATA
    frames does not become one upstream write per frame.
    """
    from .pipeline import ClientError

    nowait = getattr(getattr(receive, "__self__", None), "receive_nowait", None)
    pacer = BodyPacer(limits, timeouts, trio.current_time())
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
        if data:
            yield data


async def _send_simple(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def asgi_app(config_path: str = "gateway.toml") -> ASGIApp:
    """Build an ASGI app from a config file, for mounting under any ASGI server."""
    from .app import Gateway
    from .config import load_config

    return ASGIApp(Gateway(load_config(config_path), config_path=config_path))


class H2Server:
    """An HTTP/2 listener (h2c prior knowledge or upgrade, and TLS with ALPN) via hypercorn's trio worker."""

    def __init__(self, gateway: Any, listener: ListenerConfig, sock: Any) -> None:
        self.gateway = gateway
        self.listener = listener
        self.sock = sock
        self._stop = trio.Event()
        self._done = trio.Event()
        self._scope: trio.CancelScope | None = None

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from hypercorn.config import Config as HyperConfig
        from hypercorn.trio import serve as hyper_serve

        hc = HyperConfig()
        # hypercorn adopts the fd it is given (and closes it): hand it a duplicate, so the
        # listening socket bound here (or inherited from the supervisor) keeps its own
        fd = os.dup(self.sock.fileno())
        hc.bind = [f"fd://{fd}"]
        if self.listener.tls_cert:
            hc.certfile = self.listener.tls_cert
            hc.keyfile = self.listener.tls_key
            hc.alpn_protocols = ["h2", "http/1.1"]
        hc.accesslog = None
        hc.errorlog = logging.getLogger("triogate.hypercorn")
        t = self.gateway.config.gateway.timeouts
        hc.keep_alive_timeout = t.idle
        hc.graceful_timeout = t.drain
        hc.h11_max_incomplete_size = self.gateway.config.gateway.limits.max_header_bytes
        app = _NoLifespan(ASGIApp(self.gateway))
        try:
            with trio.CancelScope() as self._scope:
                await hyper_serve(app, hc, shutdown_trigger=self._stop.wait, task_status=task_status)  # type: ignore[arg-type]
        finally:
            self.sock.close()
            self._done.set()

    def stop_accepting(self) -> None:
        self._stop.set()

    async def drain(self) -> None:
        await self._done.wait()

    def close_all(self) -> None:
        if self._scope is not None:
            self._scope.cancel()


class _NoLifespan:
    """The gateway's lifecycle is run by ``serve``; hypercorn's lifespan is a no-op here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.app(scope, receive, send)
