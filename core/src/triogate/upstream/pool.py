"""Connection pool for one upstream origin (trio plus an HTTP/1.1 protocol backend).

LIFO idle reuse (the warmest connection first), a cap on open connections,
stale-connection detection on checkout and one safe retry when a reused
connection turns out dead before the upstream said anything. A connection is reused
only if its response was framed exactly: no byte after the response's end, neither in
the parser, nor in the TLS layer, nor on the socket when it is checked out again (an
upstream that writes extra bytes after a HEAD, 204 or Content-Length response must not
answer the next client's request with them). Read and write timeouts are deadlines
enforced by a shared watcher (deadlines.py), which closes a late connection's socket
instead of wrapping every I/O call in a cancel scope.
"""

from __future__ import annotations

import logging
import math
import select
import ssl
from collections.abc import AsyncIterator
from typing import Any

import trio

from ..deadlines import shared_watcher
from ..headers import Headers
from ..http1 import CLOSED, END, NEED_DATA, ProtocolError, ResponseHead, client_connection_factory
from ..messages import Body, BodyTooLarge, Response
from ..sockio import raw_socket, receive_some, send_all
from ..problem import BadGateway, GatewayError, GatewayTimeout, ServiceUnavailable
from ..tlsfiles import describe_ssl_error, ssl_failure

__all__ = [
    "ConnectionPool", "UpstreamError", "ConnectError", "UpstreamTimeout", "PoolTimeout", "RequestNotSendable",
    "UpstreamTLSError", "IDEMPOTENT_METHODS",
]

log = logging.getLogger("triogate")

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


class UpstreamTLSError(UpstreamError):
    """TLS with the upstream failed: its certificate did not verify, or it refused ours (502).

    Never a fallback to an unverified or plain connection. It is the target's fault for the circuit
    breaker (an UpstreamError). ``reason`` is the verification error or TLS alert, for the log only:
    the client's problem detail does not say why a certificate was refused.
    """

    def __init__(self, detail: str, reason: str, *, sent: bool) -> None:
        super().__init__(detail, sent=sent)
        self.reason = reason


class UpstreamTimeout(GatewayTimeout):
    def __init__(self, detail: str = "upstream timed out", *, sent: bool = True) -> None:
        super().__init__(detail)
        self.sent = sent


class PoolTimeout(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("upstream connection limit reached")


class RequestNotSendable(GatewayError):
    """The gateway could not serialize the request (an invalid field a plugin or hook added): 500.

    Nothing went upstream and the target is not at fault. Client input that would fail here
    is refused by the listener (400) already.
    """

    status = 500


class _StaleConnection(Exception):
    """A reused connection died before any response byte: safe to retry once."""


_INF = math.inf


class Connection:
    __slots__ = ("stream", "sock", "proto", "idle_since", "pool", "deadline", "timed_out", "_poller")

    def __init__(self, stream: trio.abc.Stream, pool: ConnectionPool) -> None:
        self.stream = stream
        self.sock = raw_socket(stream)  # plain TCP: direct non-blocking I/O (sockio.py)
        self.proto = pool.new_proto(pool.max_head_bytes)
        self.pool = pool
        self.idle_since = 0.0
        self.deadline = _INF
        self.timed_out = False
        self._poller: Any = None

    def _socket(self) -> Any:
        s = self.stream
        sock = getattr(s, "socket", None)
        if sock is None:
            sock = getattr(getattr(s, "transport_stream", None), "socket", None)
        return sock

    def expire(self) -> None:
        """The deadline passed: close the socket now, so the task waiting on it wakes with an error."""
        self.timed_out = True
        sock = self._socket()
        if sock is not None:
            sock.close()

    def has_unread(self) -> bool:
        """Is an idle keep-alive connection readable, i.e. closed by the upstream or holding bytes
        no request asked for? Either way it must not carry another request.

        One poll(2) with a zero timeout (~0.3 µs; poll, not select, so any fd number works). On a
        TLS connection, bytes already read from the socket may wait in the TLS layer instead.
        """
        if self.sock is None and _tls_buffered(self.stream):
            return True
        poller = self._poller
        if poller is None:
            sock = self._socket()
            if sock is None:
                return False
            poller = self._poller = select.poll()
            try:
                poller.register(sock.fileno(), select.POLLIN)
            except (OSError, ValueError):
                return True
        try:
            return bool(poller.poll(0))  # POLLIN, POLLHUP, POLLERR or POLLNVAL (closed): all unusable
        except OSError:
            return True

    async def aclose(self) -> None:
        shared_watcher().discard(self)
        with trio.CancelScope(shield=True):
            try:
                await trio.aclose_forcefully(self.stream)
            except Exception:  # noqa: BLE001 - closing a broken socket must not raise
                pass


def _tls_buffered(stream: Any) -> bool:
    """Bytes a ``trio.SSLStream`` holds that nobody read: records not yet decrypted, or plaintext.

    trio does not expose these; its MemoryBIO and SSLObject are looked up defensively, and a
    trio without them is only checked on the socket.
    """
    incoming = getattr(stream, "_incoming", None)
    ssl_object = getattr(stream, "_ssl_object", None)
    return bool(getattr(incoming, "pending", 0)) or bool(ssl_object is not None and ssl_object.pending())


class ConnectionPool:
    """Connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        tls_verify: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        server_name: str | None = None,
        label: str | None = None,
        max_connections: int = 256,
        max_idle: int = 64,
        idle_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        write_timeout: float = 60.0,
        max_head_bytes: int = 65536,
        http1_parser: str = "auto",
        pool_timeout: float | None = None,
        host_name: str | None = None,
    ) -> None:
        """``host_name``: the name the Host header carries instead of ``host`` (an address found
        under that DNS name: what a virtual-hosted upstream expects), with the port as in a URL."""
        self.host = host
        self.port = port
        self.tls = tls
        default_port = port == (443 if tls else 80)
        named = host_name or host
        self.authority = named if default_port else f"{named}:{port}"
        self.authority_b = self.authority.encode("idna") if not named.startswith("[") else self.authority.encode()
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_head_bytes = max_head_bytes
        self.pool_timeout = connect_timeout if pool_timeout is None else pool_timeout
        self.new_proto = client_connection_factory(http1_parser)
        self._idle: list[Connection] = []
        self._slots = trio.Semaphore(max_connections)
        self.open_connections = 0
        self.active_requests = 0
        self._ssl_context: ssl.SSLContext | None = None
        # SNI and the name the certificate must carry (an IP literal is matched against IP SANs, no SNI)
        self.server_name = server_name or host.strip("[]")
        #: who this pool talks for, in log lines: "upstream 'users' target https://10.0.0.1:8443"
        self.label = label or f"{'https' if tls else 'http'}://{host if default_port else f'{host}:{port}'}"
        if tls and ssl_context is not None:
            self._ssl_context = ssl_context
        elif tls:
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
                    ssl_stream = trio.SSLStream(stream, self._ssl_context, server_hostname=self.server_name)
                    try:
                        await ssl_stream.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                    stream = ssl_stream
        except trio.TooSlowError:
            raise UpstreamTimeout("upstream connect timed out", sent=False) from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            if (failure := ssl_failure(exc)) is not None:
                raise self.tls_error(failure, sent=False) from None
            raise ConnectError(f"cannot connect to upstream: {exc.__class__.__name__}") from None
        if isinstance(stream, trio.SocketStream):
            try:
                import socket

                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            except OSError:
                pass
        self.open_connections += 1
        conn = Connection(stream, self)
        shared_watcher().add(conn)
        return conn

    def tls_error(self, failure: ssl.SSLError, *, sent: bool) -> UpstreamTLSError:
        """Log a failed TLS exchange with this pool's upstream and target, and make its 502."""
        reason = describe_ssl_error(failure)
        if isinstance(failure, ssl.SSLCertVerificationError):
            what, detail = "certificate verification failed", "upstream TLS certificate did not verify"
        else:
            what, detail = "TLS handshake failed", "upstream TLS handshake failed"
            if "certificate required" in reason:
                reason += " (the upstream wants a client certificate: tls.cert and tls.key)"
        log.error("%s: %s (server name %r): %s", self.label, what, self.server_name, reason)
        return UpstreamTLSError(detail, reason, sent=sent)

    async def _checkout(self) -> tuple[Connection, bool]:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(self.pool_timeout) as cs:
                await self._slots.acquire()
            if cs.cancelled_caught:
                raise PoolTimeout() from None
        try:
            now = trio.current_time()
            while self._idle:
                conn = self._idle.pop()
                idle = now - conn.idle_since
                # a readable idle connection was closed by the upstream or holds stale bytes: checked
                # on every checkout, however short the idle time (stale bytes may follow a response)
                if idle > self.idle_timeout or conn.has_unread():
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
        if reusable and not self.closed and len(self._idle) < self.max_idle:
            conn.idle_since = trio.current_time()
            conn.deadline = _INF
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

    async def _write(self, conn: Connection, data: bytes) -> None:
        conn.deadline = trio.current_time() + self.write_timeout
        await send_all(conn.sock, conn.stream, data)
        conn.deadline = _INF

    async def _exchange(
        self, conn: Connection, method: str, target: str | bytes, headers: list[tuple[bytes, bytes]],
        body: Body | None, reused: bool,
    ) -> Response:
        proto = conn.proto
        hdrs = list(headers)
        for n, _ in hdrs:
            if n == b"host":
                break
        else:
            hdrs.insert(0, (b"host", self.authority_b))
        framed = body is not None and (body.length is None or body.length > 0 or method not in ("GET", "HEAD"))
        tgt = target if isinstance(target, bytes) else target.encode()
        sent_body = False
        try:
            head = proto.send_request(method, tgt, hdrs, length=body.length if framed else 0,  # type: ignore[union-attr]
                                      framed=framed)
            if body is None:
                await self._write(conn, head + proto.send_end())
            elif body.is_buffered:  # one write for head, body and end
                data = body.data or b""
                await self._write(conn, head + (proto.send_data(data) if data else b"") + proto.send_end())
            else:
                await self._write(conn, head)
                async for chunk in body:
                    sent_body = True
                    await self._write(conn, proto.send_data(chunk))
                await self._write(conn, proto.send_end())
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if conn.timed_out:
                raise UpstreamTimeout("upstream write timed out") from None
            if reused and not sent_body and not proto.received_any:
                raise _StaleConnection() from exc
            if not reused and (failure := ssl_failure(exc)) is not None:
                # TLS 1.3: an upstream refusing our certificate alerts after the client's handshake ended
                raise self.tls_error(failure, sent=True) from None
            # The upstream may have answered early (e.g. 413) and closed: try to read it.
            try:
                return await self._read_response(conn, method)
            except GatewayError:
                raise UpstreamError("upstream connection broke while sending the request") from None
        except ProtocolError as exc:  # our serializer refused the request (the connection is dropped)
            raise RequestNotSendable(f"cannot send request upstream: {exc.detail}") from None
        except BodyTooLarge:
            raise
        return await self._read_response(conn, method, reused=reused)

    async def _read_response(self, conn: Connection, method: str, *, reused: bool = False) -> Response:
        proto = conn.proto
        timeout = self.read_timeout
        conn.deadline = trio.current_time() + timeout
        try:
            while True:
                event = proto.next_event()
                if event is NEED_DATA:
                    data = await receive_some(conn.sock, conn.stream, READ_SIZE)
                    conn.deadline = trio.current_time() + timeout
                    proto.receive_data(data)
                    continue
                if type(event) is ResponseHead:
                    if event.status == 101:
                        return self._switched(conn, event)
                    if event.status >= 200:
                        break
                    continue
                if event is CLOSED:
                    if reused and not proto.received_any:
                        raise _StaleConnection()
                    raise UpstreamError("upstream closed the connection without a response")
                raise UpstreamError(f"unexpected {event!r} from upstream")
        except ProtocolError as exc:
            if reused and not proto.received_any:
                raise _StaleConnection() from exc
            raise UpstreamError(exc.detail) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if conn.timed_out:
                raise UpstreamTimeout("upstream read timed out") from None
            if reused and not proto.received_any:
                raise _StaleConnection() from exc
            if not reused and not proto.received_any and (failure := ssl_failure(exc)) is not None:
                # TLS 1.3: an upstream refusing our certificate (or its absence) alerts on our first read;
                # the request bytes went out, so like any failure after sending: no retry for a POST
                raise self.tls_error(failure, sent=True) from None
            raise UpstreamError("upstream connection reset") from None
        headers = Headers.from_raw(event.headers)
        # whatever of the body already arrived with the head: often all of it
        first: list[bytes] = []
        while True:
            nxt = proto.next_event()
            if type(nxt) is bytes:
                first.append(nxt)
                continue
            break
        if nxt is END:
            conn.deadline = _INF
            await self._finish(conn)
            body = Body(b"".join(first) if len(first) != 1 else first[0])
        else:
            closer = _Closer(self, conn)
            body = Body(self._stream_body(conn, closer, first, nxt), event.length, on_close=closer)
        return Response(event.status, headers, body, reason=event.reason)

    def _switched(self, conn: Connection, event: ResponseHead) -> Response:
        """101: hand the raw stream to the caller (WebSocket tunnel); the connection leaves the pool."""
        shared_watcher().discard(conn)
        self.active_requests -= 1
        self.open_connections -= 1
        self._slots.release()
        resp = Response(101, Headers.from_raw(event.headers), Body(b""), reason=event.reason)
        resp.upgrade = (conn.stream, conn.proto.trailing_data)
        return resp

    async def _finish(self, conn: Connection) -> None:
        self.active_requests -= 1
        reusable = conn.proto.reusable
        if reusable:
            conn.proto.start_next_cycle()
        await self._release(conn, reusable)

    async def _stream_body(self, conn: Connection, closer: _Closer, first: list[bytes], pending: Any,
                           ) -> AsyncIterator[bytes]:
        proto = conn.proto
        timeout = self.read_timeout
        for chunk in first:
            yield chunk
        event = pending
        try:
            while True:
                if event is NEED_DATA:
                    conn.deadline = trio.current_time() + timeout
                    data = await receive_some(conn.sock, conn.stream, READ_SIZE)
                    conn.deadline = _INF
                    proto.receive_data(data)
                elif type(event) is bytes:
                    yield event
                elif event is END:
                    await closer()  # back to the pool now, not when the caller gets round to closing
                    return
                else:
                    raise UpstreamError("upstream closed the connection mid-body")
                event = proto.next_event()
        except ProtocolError as exc:
            raise UpstreamError(f"invalid response body from upstream: {exc.detail}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            if conn.timed_out:
                raise UpstreamTimeout("upstream read timed out mid-body") from None
            raise UpstreamError("upstream connection reset mid-body") from None


class _Closer:
    """Releases the connection of a streamed response body once: at its end, or when it is
    closed early (then the connection is not reused)."""

    __slots__ = ("pool", "conn", "done")

    def __init__(self, pool: ConnectionPool, conn: Connection) -> None:
        self.pool = pool
        self.conn: Connection | None = conn

    async def __call__(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        conn.deadline = _INF
        if conn.proto.reusable:
            await self.pool._finish(conn)  # noqa: SLF001
        else:
            self.pool.active_requests -= 1
            await self.pool._release(conn, False)  # noqa: SLF001
