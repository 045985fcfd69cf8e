"""trio + h11 connection pool for one upstream origin.

LIFO idle reuse (the warmest connection first), a cap on open connections,
stale-connection detection on checkout and one safe retry when a reused
connection turns out dead before the upstream said anything.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import AsyncIterator
from typing import Any

import h11
import trio

from ..headers import Headers
from ..messages import Body, BodyTooLarge, Response
from ..problem import BadGateway, GatewayError, GatewayTimeout, ServiceUnavailable

__all__ = [
    "ConnectionPool", "UpstreamError", "ConnectError", "UpstreamTimeout", "PoolTimeout",
    "IDEMPOTENT_METHODS",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
READ_SIZE = 65536


class UpstreamError(BadGateway):
    """The upstream failed (502). ``sent`` tells whether any of the request reached it."""

    def __init__(self, detail: str = "upstream failed", *, sent: bool = True) -> None:
        super().__init__(detail)
        self.sent = sent


class ConnectError(UpstreamError):
    def __init__(self, detail: str = "cannot connect to upstream") -> None:
        super().__init__(detail, sent=False)


class UpstreamTimeout(GatewayTimeout):
    def __init__(self, detail: str = "upstream timed out", *, sent: bool = True) -> None:
        super().__init__(detail)
        self.sent = sent


class PoolTimeout(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("upstream connection limit reached")


class _StaleConnection(Exception):
    """A reused connection died before any response byte: safe to retry once."""


class Connection:
    __slots__ = ("stream", "h11", "idle_since", "pool", "received_any")

    def __init__(self, stream: trio.abc.Stream, pool: ConnectionPool) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=pool.max_head_bytes)
        self.pool = pool
        self.idle_since = 0.0
        self.received_any = False

    def looks_dead(self) -> bool:
        """An idle keep-alive connection that is readable has been closed (or sent junk)."""
        sock = getattr(self.stream, "socket", None)
        if sock is None:
            transport = getattr(self.stream, "transport_stream", None)
            sock = getattr(transport, "socket", None)
        if sock is None:
            return False
        try:
            r, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    async def send(self, event: Any, timeout: float) -> None:
        data = self.h11.send(event)
        if data:
            with trio.move_on_after(timeout) as cs:
                await self.stream.send_all(data)
            if cs.cancelled_caught:
                raise UpstreamTimeout("upstream write timed out")

    async def next_event(self, timeout: float) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_after(timeout) as cs:
                data = await self.stream.receive_some(READ_SIZE)
            if cs.cancelled_caught:
                raise UpstreamTimeout("upstream read timed out")
            if data:
                self.received_any = True
            self.h11.receive_data(data)

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await trio.aclose_forcefully(self.stream)
            except Exception:  # noqa: BLE001 - closing a broken socket must not raise
                pass


class ConnectionPool:
    """Connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        tls_verify: bool = True,
        max_connections: int = 256,
        max_idle: int = 64,
        idle_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        write_timeout: float = 60.0,
        max_head_bytes: int = 65536,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.authority = host if port == (443 if tls else 80) else f"{host}:{port}"
        self.authority_b = self.authority.encode("idna") if not host.startswith("[") else self.authority.encode()
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_head_bytes = max_head_bytes
        self._idle: list[Connection] = []
        self._slots = trio.Semaphore(max_connections)
        self.open_connections = 0
        self.active_requests = 0
        self._ssl_context: ssl.SSLContext | None = None
        if tls:
            ctx = ssl.create_default_context()
            if not tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl_context = ctx
        self.closed = False

    # ------------------------------------------------------------- connections

    async def _connect(self) -> Connection:
        try:
            with trio.fail_after(self.connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(self.host.strip("[]"), self.port)
                if self._ssl_context is not None:
                    ssl_stream = trio.SSLStream(stream, self._ssl_context, server_hostname=self.host.strip("[]"))
                    await ssl_stream.do_handshake()
                    stream = ssl_stream
        except trio.TooSlowError:
            raise UpstreamTimeout("upstream connect timed out", sent=False) from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to upstream: {exc.__class__.__name__}") from None
        if isinstance(stream, trio.SocketStream):
            try:
                import socket

                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            except OSError:
                pass
        self.open_connections += 1
        return Connection(stream, self)

    async def _checkout(self) -> tuple[Connection, bool]:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(self.connect_timeout) as cs:
                await self._slots.acquire()
            if cs.cancelled_caught:
                raise PoolTimeout() from None
        try:
            now = trio.current_time()
            while self._idle:
                conn = self._idle.pop()
                if now - conn.idle_since > self.idle_timeout or conn.looks_dead():
                    await self._discard(conn)
                    continue
                return conn, True
            return await self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    async def _discard(self, conn: Connection) -> None:
        self.open_connections -= 1
        await conn.aclose()

    async def _release(self, conn: Connection, reusable: bool) -> None:
        self._slots.release()
        if reusable and not self.closed and conn.h11.our_state is h11.IDLE and len(self._idle) < self.max_idle:
            conn.idle_since = trio.current_time()
            conn.received_any = False
            self._idle.append(conn)
        else:
            await self._discard(conn)

    async def aclose(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._discard(conn)

    # ------------------------------------------------------------- requests

    async def request(
        self,
        method: str,
        target: str | bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body | None = None,
        *,
        on_first_body_read: Any = None,
    ) -> Response:
        """Send one request; the response body streams and returns the connection when done.

        ``headers`` must not carry Host (the pool adds the authority unless a Host is given)
        nor framing headers; framing follows ``body`` (Content-Length when the length is known).
        """
        if body is not None:
            await body.prime()  # a bad or missing body fails here, before anything goes upstream
        replayable = body is None or body.is_buffered
        conn, reused = await self._checkout()
        self.active_requests += 1
        try:
            try:
                return await self._exchange(conn, method, target, headers, body, reused)
            except _StaleConnection:
                await self._discard(conn)
                self._slots.release()
                conn = None  # type: ignore[assignment]
                if not (replayable and method in IDEMPOTENT_METHODS):
                    raise UpstreamError("upstream closed a reused connection") from None
                conn, _ = await self._checkout()
                try:
                    return await self._exchange(conn, method, target, headers, body, False)
                except _StaleConnection:
                    raise UpstreamError("upstream closed the connection") from None
        except BaseException:
            self.active_requests -= 1
            if conn is not None:
                await self._discard(conn)
                self._slots.release()
            raise

    async def _exchange(
        self, conn: Connection, method: str, target: str | bytes, headers: list[tuple[bytes, bytes]],
        body: Body | None, reused: bool,
    ) -> Response:
        hdrs = list(headers)
        if not any(n == b"host" for n, _ in hdrs):
            hdrs.insert(0, (b"host", self.authority_b))
        if body is not None and (body.length is None or body.length > 0 or method not in ("GET", "HEAD")):
            if body.length is not None:
                hdrs.append((b"content-length", str(body.length).encode()))
            else:
                hdrs.append((b"transfer-encoding", b"chunked"))
        tgt = target if isinstance(target, bytes) else target.encode()
        sent_body = False
        try:
            await conn.send(h11.Request(method=method, target=tgt, headers=hdrs), self.write_timeout)
            if body is not None:
                async for chunk in body:
                    sent_body = True
                    await conn.send(h11.Data(data=chunk), self.write_timeout)
            await conn.send(h11.EndOfMessage(), self.write_timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if reused and not sent_body and not conn.received_any:
                raise _StaleConnection() from exc
            # The upstream may have answered early (e.g. 413) and closed: try to read it.
            try:
                return await self._read_response(conn, method, sent=True)
            except GatewayError:
                raise UpstreamError("upstream connection broke while sending the request") from None
        except h11.LocalProtocolError as exc:
            raise UpstreamError(f"cannot send request upstream: {exc}") from None
        except BodyTooLarge:
            raise
        return await self._read_response(conn, method, sent=True, reused=reused)

    async def _read_response(self, conn: Connection, method: str, *, sent: bool, reused: bool = False) -> Response:
        try:
            while True:
                event = await conn.next_event(self.read_timeout)
                if isinstance(event, h11.InformationalResponse):
                    if event.status_code == 101:
                        return self._switched(conn, event)
                    continue
                if isinstance(event, h11.Response):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    if reused and not conn.received_any:
                        raise _StaleConnection()
                    raise UpstreamError("upstream closed the connection without a response")
                raise UpstreamError(f"unexpected event from upstream: {type(event).__name__}")
        except h11.RemoteProtocolError as exc:
            if reused and not conn.received_any:
                raise _StaleConnection() from exc
            raise UpstreamError(f"invalid response from upstream: {exc}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if reused and not conn.received_any:
                raise _StaleConnection() from exc
            raise UpstreamError("upstream connection reset") from None
        headers = Headers.from_raw(list(event.headers))
        length = None
        if method == "HEAD" or event.status_code in (204, 304):
            length = 0
        else:
            cl = headers.get("content-length")
            if cl is not None and not headers.get("transfer-encoding"):
                length = int(cl)
        if length == 0:
            body = Body(b"")
            if conn.h11.their_state is h11.SEND_BODY:
                try:  # h11 knows there is no body: its EndOfMessage is ready without more bytes
                    conn.h11.next_event()
                except h11.RemoteProtocolError:
                    pass  # not DONE: _finish closes the connection instead of reusing it
            await self._finish(conn)
        else:
            closer = _Closer(self, conn)
            body = Body(self._stream_body(conn, closer), length, on_close=closer)
        return Response(event.status_code, headers, body, reason=event.reason)

    def _switched(self, conn: Connection, event: h11.InformationalResponse) -> Response:
        """101: hand the raw stream to the caller (WebSocket tunnel); the connection leaves the pool."""
        self.active_requests -= 1
        self.open_connections -= 1
        self._slots.release()
        headers = Headers.from_raw(list(event.headers))
        resp = Response(101, headers, Body(b""), reason=event.reason)
        resp.upgrade = (conn.stream, conn.h11.trailing_data[0])
        return resp

    async def _finish(self, conn: Connection) -> None:
        self.active_requests -= 1
        reusable = conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE
        if reusable:
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                reusable = False
        await self._release(conn, reusable)

    async def _stream_body(self, conn: Connection, closer: _Closer) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await conn.next_event(self.read_timeout)
                if type(event) is h11.Data:
                    yield event.data
                elif type(event) is h11.EndOfMessage:
                    await closer()  # back to the pool now, not when the caller gets round to closing
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise UpstreamError("upstream closed the connection mid-body")
        except h11.RemoteProtocolError as exc:
            raise UpstreamError(f"invalid response body from upstream: {exc}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise UpstreamError("upstream connection reset mid-body") from None


class _Closer:
    """Releases the connection of a streamed response body once: at its end, or when it is
    closed early (then the connection is reused only if the message had finished)."""

    __slots__ = ("pool", "conn")

    def __init__(self, pool: ConnectionPool, conn: Connection) -> None:
        self.pool = pool
        self.conn: Connection | None = conn

    async def __call__(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if conn.h11.their_state is h11.DONE:
            await self.pool._finish(conn)  # noqa: SLF001
        else:
            self.pool.active_requests -= 1
            await self.pool._release(conn, False)  # noqa: SLF001
