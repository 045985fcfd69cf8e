"""The native HTTP/1.1 listener: trio + h11, written for the gateway.

One task per connection, no per-request task or timer restarts; strict limits
and timeouts so slow or malformed clients cannot hold the gateway; requests that
are malformed or ambiguous (smuggling vectors) get 400 and are never forwarded.
"""

from __future__ import annotations

import errno
import json
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import h11
import trio

from .config import ListenerConfig
from .headers import Headers
from .messages import Body, BodyTooLarge, Request, Response
from .pipeline import ClientError
from .proxy import new_request_id
from .routing import BadPath, normalize_path

__all__ = ["HTTP1Server"]

log = logging.getLogger("triogate.server")
READ_SIZE = 65536
_NO_BODY_STATUS = frozenset({204, 304})
_RESPONSE_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})
_REASONS = {s.value: s.phrase.encode() for s in __import__("http").HTTPStatus}
_ACCEPT_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_HTTP_VERSIONS = frozenset({b"1.1", b"1.0"})
# RFC 3986 reg-name / IPv4 characters, and what an IP-literal or port adds
_HOST_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]")


_MAX_CHUNKED_TOTAL = (1 << 63) - 1  # beyond it, parsers that truncate to 64 bits disagree on framing


def _chunk_remaining(conn: h11.Connection) -> int:
    """Bytes of the current chunk h11 has not delivered yet (from the chunk-size line).

    h11 does not expose the declared chunk size; it keeps it in its chunked reader.
    Without that reader (another h11 version) this returns 0 and only the running
    total is checked.
    """
    return getattr(getattr(conn, "_reader", None), "_bytes_in_chunk", 0)


def _valid_host(value: bytes) -> bool:
    """uri-host [ ":" port ] (RFC 9110 §7.2): no path, userinfo, spaces or controls."""
    if not value:
        return True  # an empty Host is allowed (RFC 9112 §3.2) and matches no host-bound route
    if not _HOST_BYTES.issuperset(value):
        return False
    if value.startswith(b"["):
        end = value.find(b"]")
        if end < 0:
            return False
        rest = value[end + 1:]
        return not rest or (rest[:1] == b":" and rest[1:].isdigit())
    host, sep, port = value.rpartition(b":")
    if sep:
        return bool(host) and b":" not in host and b"[" not in host and port.isdigit()
    return b"]" not in value


class _Reject(Exception):
    """A request refused before the pipeline saw it."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def raw_problem(status: int, detail: str, request_id_header: bytes = b"x-request-id") -> bytes:
    """A complete problem+json response for requests refused before the pipeline (closes the connection)."""
    title = _REASONS.get(status, b"Error").decode()
    rid = new_request_id()
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                       "request_id": rid}, separators=(",", ":")).encode()
    return (
        f"HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\ncache-control: no-store\r\n"
        f"{request_id_header.decode()}: {rid}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class _Conn:
    __slots__ = ("stream", "h11", "peer", "idle_scope", "busy", "body_done")

    def __init__(self, stream: trio.abc.Stream, max_head: int, peer: tuple[str, int] | None) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
        self.peer = peer
        self.idle_scope: trio.CancelScope | None = None
        self.busy = False
        self.body_done = True


def _peer_of(stream: trio.abc.Stream) -> tuple[str, int] | None:
    s = stream
    while not hasattr(s, "socket") and hasattr(s, "transport_stream"):
        s = s.transport_stream  # type: ignore[attr-defined]
    sock = getattr(s, "socket", None)
    if sock is None:
        return None
    try:
        addr = sock.getpeername()
    except OSError:
        return None
    return (addr[0], addr[1]) if isinstance(addr, tuple) else ("127.0.0.1", 0)


class HTTP1Server:
    """Serves one listening socket with the gateway's pipeline."""

    def __init__(self, gateway: Any, listener: ListenerConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.gateway = gateway
        self.listener = listener
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        gcfg = gateway.config.gateway
        self.limits = gcfg.limits
        self.timeouts = gcfg.timeouts
        self.request_id_header = gcfg.request_id_header.lower().encode("latin-1")
        self.connections: set[_Conn] = set()
        self.draining = False
        self._accept_scope: trio.CancelScope | None = None
        self._conns_scope: trio.CancelScope | None = None
        self._no_connections = trio.Event()
        self._no_connections.set()

    # ------------------------------------------------------------------ accepting

    async def run(self, listener: trio.SocketListener, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as conns:
            self._conns_scope = conns.cancel_scope
            with trio.CancelScope() as self._accept_scope:
                task_status.started()
                async with listener:
                    while True:
                        try:
                            stream = await listener.accept()
                        except OSError as exc:
                            if exc.errno in _ACCEPT_RETRY_ERRNOS:
                                log.error("accept failed (%s); retrying", exc)
                                await trio.sleep(0.1)
                                continue
                            raise
                        conns.start_soon(self._connection, stream)
            await self._no_connections.wait()

    def stop_accepting(self) -> None:
        """Stop taking connections; close idle keep-alive ones; busy ones close after their response."""
        self.draining = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for c in list(self.connections):
            if not c.busy and c.idle_scope is not None:
                c.idle_scope.cancel()

    async def drain(self) -> None:
        await self._no_connections.wait()

    def close_all(self) -> None:
        if self._conns_scope is not None:
            self._conns_scope.cancel()

    # ------------------------------------------------------------------ connections

    async def _connection(self, stream: trio.abc.Stream) -> None:
        if isinstance(stream, trio.SocketStream):
            try:
                import socket

                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            except OSError:
                pass
        peer = _peer_of(stream)
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True)
            with trio.move_on_after(self.timeouts.header) as cs:
                try:
                    await stream.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError):
                    await trio.aclose_forcefully(stream)
                    return
            if cs.cancelled_caught:
                await trio.aclose_forcefully(stream)
                return
        c = _Conn(stream, self.limits.max_header_bytes, peer)
        self.connections.add(c)
        self._no_connections = trio.Event() if self._no_connections.is_set() else self._no_connections
        try:
            first = True
            while not self.draining or first:
                first = False
                if not await self._one_request(c):
                    break
                if c.h11.our_state is not h11.DONE or c.h11.their_state is not h11.DONE:
                    break
                c.h11.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h11.LocalProtocolError, ssl.SSLError):
            pass
        finally:
            self.connections.discard(c)
            if not self.connections:
                self._no_connections.set()
            await trio.aclose_forcefully(stream)

    async def _read_head(self, c: _Conn) -> tuple[h11.Request, bytes] | None:
        """Read a request head within the idle/header deadlines; None closes quietly."""
        head = bytearray(c.h11.trailing_data[0])
        waiting_idle = not head
        deadline = trio.current_time() + (self.timeouts.idle if waiting_idle else self.timeouts.header)
        while True:
            try:
                event = c.h11.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint if exc.error_status_hint != 400 or "too long" not in str(exc) else 431
                raise _Reject(status, f"malformed request: {exc}") from None
            if event is h11.NEED_DATA:
                with trio.move_on_at(deadline) as cs:
                    if waiting_idle:
                        c.idle_scope = cs
                        if self.draining:
                            cs.cancel()
                    data = await c.stream.receive_some(READ_SIZE)
                c.idle_scope = None
                if cs.cancelled_caught:
                    if waiting_idle:
                        return None
                    raise _Reject(408, "request head not received in time")
                if not data:
                    return None
                if waiting_idle:
                    waiting_idle = False
                    deadline = trio.current_time() + self.timeouts.header
                if len(head) <= self.limits.max_header_bytes:
                    head += data
                c.h11.receive_data(data)
                continue
            if type(event) is h11.Request:
                return event, bytes(head)
            return None  # ConnectionClosed

    def _validate(self, event: h11.Request, head: bytes) -> None:
        """Reject what h11 tolerates but a proxy must not forward (RFC 9112 §6.3, §5.2)."""
        end = head.find(b"\r\n\r\n")
        if (end if end >= 0 else len(head)) > self.limits.max_header_bytes:
            raise _Reject(431, "request head too large")
        block = head[: end if end >= 0 else len(head)]
        if block.count(b"\n") != block.count(b"\r\n") or block.count(b"\r") != block.count(b"\r\n"):
            raise _Reject(400, "bare CR or LF in request head")
        if b"\n " in block or b"\n\t" in block:
            raise _Reject(400, "obsolete line folding in request head")
        if len(event.target) > self.limits.max_request_line:
            raise _Reject(414, "request target too long")
        if len(event.headers) > self.limits.max_headers:
            raise _Reject(431, "too many header fields")
        if event.http_version not in _HTTP_VERSIONS:
            raise _Reject(505, "this listener serves HTTP versions 1.0 and 1.1")
        has_cl = has_te = False
        host: bytes | None = None
        for name, value in event.headers:
            if name == b"content-length":
                has_cl = True
            elif name == b"transfer-encoding":
                has_te = True
            elif name == b"host":
                if host is not None:
                    raise _Reject(400, "more than one Host header")
                host = value
        if has_cl:
            if has_te:
                raise _Reject(400, "both Content-Length and Transfer-Encoding")
            # h11 merges repeated or list-valued Content-Length fields; a proxy must not
            lowered = block.lower()
            if lowered.count(b"\ncontent-length:") > 1:
                raise _Reject(400, "duplicate Content-Length")
            if b"," in lowered.split(b"\ncontent-length:", 1)[1].split(b"\r\n", 1)[0]:
                raise _Reject(400, "list-valued Content-Length")
        if host is not None and not _valid_host(host):
            raise _Reject(400, "invalid Host header")

    def _build_request(self, c: _Conn, event: h11.Request) -> Request:
        target = event.target
        try:
            text = target.decode("ascii")
        except UnicodeDecodeError:
            raise _Reject(400, "non-ASCII request target") from None
        headers = Headers.from_raw(list(event.headers))
        if text.startswith("/"):
            path, _, query = text.partition("?")
        elif text.startswith(("http://", "https://")):
            from urllib.parse import urlsplit

            u = urlsplit(text)
            if not u.netloc or "@" in u.netloc or not _valid_host(u.netloc.encode("ascii")):
                raise _Reject(400, "invalid absolute-form target")
            path, query = u.path or "/", u.query
            headers.set("host", u.netloc)  # RFC 9112 §3.2.2: the target's authority wins
        else:
            raise _Reject(400, "unsupported request-target form")
        if "#" in path or "#" in query:
            raise _Reject(400, "fragment in request target")
        try:
            npath = normalize_path(path)
        except BadPath as exc:
            raise _Reject(400, f"bad path: {exc}") from None
        length: int | None = 0
        for name, value in event.headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                length = None
        limit = self.limits.max_body_bytes
        if limit and length is not None and length > limit:
            raise _Reject(413, f"request body larger than {limit} bytes")
        if length == 0:
            c.h11.next_event()  # the EndOfMessage of a bodiless request, already parsed
            body = Body(b"")
            c.body_done = True
        else:
            body = Body(self._body(c), length)
            c.body_done = False
        return Request(
            event.method.decode("ascii"), npath, query, headers, body,
            http_version=event.http_version.decode("ascii"), scheme=self.scheme, client=c.peer, raw_path=path,
        )

    async def _body(self, c: _Conn) -> AsyncIterator[bytes]:
        conn = c.h11
        if conn.client_is_waiting_for_100_continue:
            await self._send(c, h11.InformationalResponse(status_code=100, headers=[]))
        limit = self.limits.max_body_bytes
        received = 0
        timeout = self.timeouts.body
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    with trio.move_on_after(timeout) as cs:
                        data = await c.stream.receive_some(READ_SIZE)
                    if cs.cancelled_caught:
                        raise ClientError("request body not received in time", status=408)
                    conn.receive_data(data)
                    continue
                t = type(event)
                if t is h11.Data:
                    received += len(event.data)
                    if event.chunk_start:
                        declared = received + _chunk_remaining(conn)
                        if declared > _MAX_CHUNKED_TOTAL:
                            raise ClientError("chunk size out of range")
                        if limit and declared > limit:
                            raise BodyTooLarge(limit)  # declared by the chunk header: refuse before reading it
                    elif limit and received > limit:
                        raise BodyTooLarge(limit)
                    yield event.data
                elif t is h11.EndOfMessage:
                    c.body_done = True
                    return
                else:
                    raise ClientError("client closed the connection mid-body")
        except h11.RemoteProtocolError as exc:
            raise ClientError(f"malformed request body: {exc}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise ClientError("client connection broke mid-body") from None

    async def _send(self, c: _Conn, event: Any) -> int:
        data = c.h11.send(event)
        if data:
            with trio.move_on_after(self.timeouts.send) as cs:
                await c.stream.send_all(data)
            if cs.cancelled_caught:
                raise trio.BrokenResourceError("client write timed out")
            return len(data)
        return 0

    async def _one_request(self, c: _Conn) -> bool:
        """Serve one request on ``c``; False when the connection must close."""
        try:
            got = await self._read_head(c)
            if got is None:
                return False
            event, head = got
            self._validate(event, head)
            request = self._build_request(c, event)
        except _Reject as rej:
            with trio.move_on_after(self.timeouts.send):
                await c.stream.send_all(raw_problem(rej.status, rej.detail, self.request_id_header))
            return False

        c.busy = True
        gateway = self.gateway
        ctx, response = await gateway.handle(request)
        try:
            keep_alive = await self._send_response(c, ctx, request, response)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h11.LocalProtocolError):
            ctx.error = ctx.error or "client connection closed"
            return False
        except Exception as exc:  # noqa: BLE001 - e.g. upstream died mid-body: abort this connection only
            ctx.error = ctx.error or f"response aborted: {type(exc).__name__}: {exc}"
            return False
        finally:
            c.busy = False
            await response.body.aclose()
            await gateway.finish(ctx)
        return keep_alive

    async def _send_response(self, c: _Conn, ctx: Any, request: Request, response: Response) -> bool:
        if response.status == 101 and response.upgrade is not None:
            await self._tunnel(c, ctx, response)
            return False
        status = response.status
        body = response.body
        no_body = request.method == "HEAD" or status in _NO_BODY_STATUS or status < 200
        raw = response.headers.raw
        hdrs = [(n, v) for n, v in raw if n not in _RESPONSE_FRAMING]
        if no_body:
            if request.method == "HEAD":
                hdrs.extend((n, v) for n, v in raw if n == b"content-length")
        elif body.is_buffered:
            hdrs.append((b"content-length", str(len(body.data or b"")).encode()))
        elif body.length is not None:
            hdrs.append((b"content-length", str(body.length).encode()))
        if not c.body_done or self.draining or any(n == b"connection" and b"close" in v.lower() for n, v in raw):
            hdrs.append((b"connection", b"close"))
        reason = response.reason or _REASONS.get(status, b"")
        ctx.bytes_out += await self._send(c, h11.Response(status_code=status, headers=hdrs, reason=reason))
        if not no_body:
            async for chunk in body:
                ctx.bytes_out += await self._send(c, h11.Data(data=chunk))
        await self._send(c, h11.EndOfMessage())
        ctx.bytes_in = request.body.length or 0
        return True

    async def _tunnel(self, c: _Conn, ctx: Any, response: Response) -> None:
        """After the upstream switched protocols: copy bytes both ways until one side closes."""
        upstream, up_pending = response.upgrade  # type: ignore[misc]
        hdrs = [(n, v) for n, v in response.headers.raw]
        await self._send(c, h11.InformationalResponse(status_code=101, headers=hdrs, reason=response.reason))
        client_pending, _ = c.h11.trailing_data
        try:
            if up_pending:
                await c.stream.send_all(up_pending)
            if client_pending:
                await upstream.send_all(client_pending)

            async def pump(src: trio.abc.Stream, dst: trio.abc.Stream, scope: trio.CancelScope) -> None:
                try:
                    while True:
                        data = await src.receive_some(READ_SIZE)
                        if not data:
                            break
                        await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                scope.cancel()

            async with trio.open_nursery() as n:
                n.start_soon(pump, c.stream, upstream, n.cancel_scope)
                n.start_soon(pump, upstream, c.stream, n.cancel_scope)
        finally:
            await trio.aclose_forcefully(upstream)
