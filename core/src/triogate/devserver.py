"""A tiny programmable HTTP/1.1 server (trio + h11) for demos and tests.

It is the upstream that ``triogate.testing`` fixtures start, and what the demo
services in ``contrib/demo`` are built on.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import h11
import trio

from .headers import Headers
from .messages import Body, Request, Response

__all__ = ["UpstreamServer", "ResetConnection", "echo_handler", "free_port", "Handler"]

Handler = Callable[[Request], Awaitable[Response | dict[str, Any] | list[Any] | None]]


class ResetConnection(Exception):
    """Raise from an upstream handler to close the connection abruptly (RST), no response."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def echo_handler(request: Request) -> Response:
    """Answer with the request as JSON: method, path, query, headers (lists), body (text)."""
    body = await request.body.read(64 * 1024 * 1024)
    headers: dict[str, list[str]] = {}
    for k, v in request.headers.items():
        headers.setdefault(k, []).append(v)
    return Response.json({
        "method": request.method, "path": request.path, "query": request.query,
        "headers": headers, "body": body.decode("utf-8", "replace"),
    })


class UpstreamServer:
    """A programmable HTTP/1.1 upstream on 127.0.0.1 (trio + h11).

    ``handler(request)`` returns a :class:`~triogate.Response`, a JSON-able value, or
    None (204); it may sleep (delay), raise :class:`ResetConnection`, or stream.
    Every request is recorded in ``requests`` with its body buffered.

    With ``ssl_context`` (a server context) it serves HTTPS: ``peer_certs`` records the client
    certificate of each TLS connection (``getpeercert()``, None without one) and
    ``tls_failures`` the handshakes that failed, so upstream (m)TLS can be tested for real.
    """

    def __init__(self, handler: Handler | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 name: str = "upstream", ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler: Handler = handler or echo_handler
        self.host = host
        self.port = port
        self.name = name
        self.ssl_context = ssl_context
        self.requests: list[Request] = []
        self.connections = 0
        self.peer_certs: list[dict[str, Any] | None] = []
        self.tls_failures: list[str] = []
        self._scope: trio.CancelScope | None = None
        self.routes: dict[tuple[str, str], Handler] = {}

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}:{self.port}"

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Register a handler for one method and exact path (others fall back to ``handler``)."""
        def deco(fn: Handler) -> Handler:
            self.routes[(method.upper(), path)] = fn
            return fn

        return deco

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners: list[Any] = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        if self.ssl_context is not None:
            listeners = [trio.SSLListener(lst, self.ssl_context, https_compatible=True) for lst in listeners]
        with trio.CancelScope() as self._scope:
            async with trio.open_nursery() as nursery:
                task_status.started(self)
                await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _connection(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        if isinstance(stream, trio.SSLStream):
            try:
                with trio.fail_after(10):
                    await stream.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError) as exc:
                self.tls_failures.append(str(exc.__cause__ or exc))
                await _send_pending_alert(stream)
                await trio.aclose_forcefully(stream)
                return
            self.peer_certs.append(stream.getpeercert() or None)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)

        async def next_event() -> Any:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                    continue
                return ev

        async def body_iter() -> AsyncIterator[bytes]:
            while True:
                ev = await next_event()
                if type(ev) is h11.Data:
                    yield ev.data
                elif type(ev) is h11.EndOfMessage:
                    return
                else:
                    raise ConnectionError("client went away mid-body")

        try:
            while True:
                ev = await next_event()
                if type(ev) is not h11.Request:
                    return
                length = None
                chunked = False
                for n, v in ev.headers:
                    if n == b"content-length":
                        length = int(v)
                    elif n == b"transfer-encoding":
                        chunked = True
                has_body = chunked or (length or 0) > 0
                if not has_body and type(await next_event()) is not h11.EndOfMessage:
                    return  # consume the (empty) end of a bodiless request, so keep-alive works
                target = ev.target.decode("latin-1")
                path, _, query = target.partition("?")
                req = Request(
                    ev.method.decode(), path, query, Headers.from_raw(list(ev.headers)),
                    Body(body_iter(), length) if has_body else Body(b""),
                    http_version=ev.http_version.decode(), client=("127.0.0.1", 0), raw_path=path,
                )
                self.requests.append(req)
                handler = self.routes.get((req.method, path), self.handler)
                try:
                    result = await handler(req)
                except ResetConnection:
                    sock = getattr(stream, "transport_stream", stream).socket  # type: ignore[attr-defined]
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    await stream.aclose()
                    return
                if not req.body.is_buffered and not req.body.started:  # a streaming handler read it itself
                    try:
                        await req.body.read(1 << 30)
                    except Exception:  # noqa: BLE001 - a broken body ends the connection
                        return
                resp = _to_response(result)
                if resp.status == 101:
                    await stream.send_all(conn.send(h11.InformationalResponse(status_code=101, headers=resp.headers.raw)))
                    pending = conn.trailing_data[0]
                    if pending:
                        await stream.send_all(pending)
                    while True:  # echo tunnel for protocol-switch tests
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        await stream.send_all(data)
                hdrs = [(n, v) for n, v in resp.headers.raw if n not in (b"connection",)]
                if resp.body.is_buffered and not any(n in (b"content-length", b"transfer-encoding") for n, _ in hdrs):
                    hdrs.append((b"content-length", str(len(resp.body.data or b"")).encode()))
                elif (not resp.body.is_buffered and resp.body.length is None and ev.http_version == b"1.1"
                      and not any(n in (b"transfer-encoding", b"content-length") for n, _ in hdrs)):
                    hdrs.append((b"transfer-encoding", b"chunked"))
                await stream.send_all(conn.send(h11.Response(status_code=resp.status, headers=hdrs)))
                if req.method != "HEAD" and resp.status not in (204, 304):
                    async for chunk in resp.body:
                        await stream.send_all(conn.send(h11.Data(data=chunk)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError, h11.ProtocolError, OSError):
            return
        finally:
            await trio.aclose_forcefully(stream)


async def _send_pending_alert(stream: trio.SSLStream[Any]) -> None:
    """Send the TLS alert of a failed handshake, as OpenSSL-based servers (nginx) do.

    trio drops it (it raises before flushing its outgoing buffer), so a client refused for
    lack of a certificate would see a bare EOF instead of "certificate required". trio's
    buffer is private: without it, nothing is sent and the client sees the EOF.
    """
    outgoing = getattr(stream, "_outgoing", None)
    data = outgoing.read() if isinstance(outgoing, ssl.MemoryBIO) else b""
    if data:
        try:
            with trio.move_on_after(5):
                await stream.transport_stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(204)
    return Response.json(result)


