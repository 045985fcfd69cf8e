"""The native HTTP/1.1 listener: trio plus an HTTP/1.1 protocol backend, written for the gateway.

One task per connection, no per-request task or timer restarts: timeouts are
deadlines on the connection that one watcher task enforces (see deadlines.py),
so the hot path pays a float assignment instead of a cancel scope per read.
Strict limits so slow or malformed clients cannot hold the gateway; requests that
are malformed or ambiguous (smuggling vectors) get 400 and are never forwarded.
The parser is llhttp (fast) or h11 (reference), chosen by ``gateway.http1_parser``.
"""

from __future__ import annotations

import json
import logging
import math
import ssl
from collections.abc import AsyncIterator
from typing import Any

import trio

from .clientcert import ClientCert, peer_certificate
from .config import ListenerConfig
from .connlimit import ConnectionCap
from .deadlines import DeadlineWatcher
from .handler import RequestHandler
from .headers import Headers
from .http1 import CLOSED, END, NEED_DATA, PAUSED, Limits, ProtocolError, RequestHead, server_connection_factory
from .http1.rules import valid_host as _valid_host
from .listeners import ListenerTLS
from .messages import Body, BodyTooLarge, Request, Response
from .pacing import BodyPacer
from .pipeline import ClientError
from .proxy import new_request_id
from .routing import BadPath, normalize_path
from .sockio import raw_socket, receive_some, send_all, yields

__all__ = ["HTTP1Server"]

log = logging.getLogger("triogate.server")
READ_SIZE = 65536
_NO_BODY_STATUS = frozenset({204, 304})
_RESPONSE_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})
_REASONS = {s.value: s.phrase.encode() for s in __import__("http").HTTPStatus}
_INF = math.inf
_fair_yield = trio.lowlevel.cancel_shielded_checkpoint


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


class _Settings:
    """Limits and client timeouts of one loaded config; a connection keeps the ones it started with,
    so a reload applies them to new connections."""

    __slots__ = ("gcfg", "limits", "timeouts", "proto_limits")

    def __init__(self, gcfg: Any) -> None:
        self.gcfg = gcfg
        self.limits = lim = gcfg.limits
        self.timeouts = gcfg.timeouts
        self.proto_limits = Limits(lim.max_request_line, lim.max_header_bytes, lim.max_headers)


class _Conn:
    """One client connection; ``deadline`` is enforced by the server's DeadlineWatcher."""

    __slots__ = ("stream", "sock", "proto", "peer", "body_done", "deadline", "scope", "timed_out", "phase",
                 "responded", "keep_alive", "limits", "timeouts", "pacer", "reused", "client_cert", "verified_under")

    def __init__(self, stream: trio.abc.Stream, proto: Any, peer: tuple[str, int] | None,
                 settings: _Settings) -> None:
        self.stream = stream
        self.limits = settings.limits
        self.timeouts = settings.timeouts
        self.sock = raw_socket(stream)  # plain TCP: direct non-blocking I/O (sockio.py)
        self.proto = proto
        self.peer = peer
        self.body_done = True
        self.deadline = _INF
        self.scope: trio.CancelScope | None = None
        self.timed_out = False
        self.phase = "idle"     # idle | head | busy | body | send
        self.responded = False
        self.keep_alive = True
        self.pacer: BodyPacer | None = None  # of the body being read (names the bound a 408 hit)
        self.reused = False  # served a request already: an idle keep-alive connection, closed first at the cap
        self.client_cert: ClientCert | None = None  # verified in the TLS handshake (client_auth), on every request
        self.verified_under: Any = None  # the [gateway] config whose client CA/CRL verified client_cert

    def expire(self) -> None:
        self.timed_out = True
        if self.scope is not None:
            self.scope.cancel()


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

    def __init__(
        self, gateway: RequestHandler, listener: ListenerConfig, ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.gateway = gateway
        self.listener = listener
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        gcfg = gateway.config.gateway
        self.tls = ListenerTLS(listener, ["http/1.1"], gcfg, ssl_context) if ssl_context is not None else None
        t = gcfg.timeouts
        self._settings: _Settings = _Settings(gcfg)
        self.new_proto = server_connection_factory(gcfg.http1_parser)
        self.request_id_header = gcfg.request_id_header.lower().encode("latin-1")
        self.connections: set[_Conn] = set()
        self.draining = False
        # timeouts are enforced to within a quarter of the shortest one (at most 250 ms late)
        self.watcher = DeadlineWatcher(min(0.25, max(0.01, min(t.header, t.idle, t.body, t.request_body, t.send) / 4)))
        self._accept_scope: trio.CancelScope | None = None
        self._conns_scope: trio.CancelScope | None = None
        self._no_connections = trio.Event()
        self._no_connections.set()
        self.cap = ConnectionCap(lambda: self._current_settings().limits.max_connections, self._idle)

    # ------------------------------------------------------------------ accepting

    async def run(self, listener: trio.SocketListener | None, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Accept and serve ``listener``; with None, only serve what :meth:`serve_stream` is given
        (the h2 listener's front door accepts and hands HTTP/1.1 connections over)."""
        async with trio.open_nursery() as conns:
            self._conns_scope = conns.cancel_scope
            conns.start_soon(self.watcher.run)
            with trio.CancelScope() as self._accept_scope:
                task_status.started()
                if listener is None:
                    await trio.sleep_forever()
                async with listener:
                    await self.cap.accept_forever(listener, conns, self._connection)
            await self._no_connections.wait()
            conns.cancel_scope.cancel()  # the watcher

    def _idle(self) -> list[tuple[float, trio.CancelScope]]:
        """Keep-alive connections waiting for their next request: the cap may close them."""
        return [(c.deadline, c.scope) for c in self.connections
                if c.phase == "idle" and c.reused and c.scope is not None]

    def stop_accepting(self) -> None:
        """Stop taking connections; close idle keep-alive ones; busy ones close after their response."""
        self.draining = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for c in list(self.connections):
            if c.phase == "idle" and c.scope is not None:
                c.scope.cancel()

    async def drain(self) -> None:
        await self._no_connections.wait()

    def close_all(self) -> None:
        if self._conns_scope is not None:
            self._conns_scope.cancel()

    def _current_settings(self) -> _Settings:
        gcfg = self.gateway.config.gateway
        if gcfg is not self._settings.gcfg:
            self._settings = _Settings(gcfg)
        return self._settings

    # ------------------------------------------------------------------ connections

    async def _connection(self, stream: trio.abc.Stream) -> None:
        if isinstance(stream, trio.SocketStream):
            try:
                import socket

                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            except OSError:
                pass
        peer = _peer_of(stream)
        settings = self._current_settings()
        if self.tls is not None:
            stream = trio.SSLStream(stream, self.tls.current(settings.gcfg), server_side=True)
            with trio.move_on_after(settings.timeouts.header) as cs:
                try:
                    await stream.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError):
                    await trio.aclose_forcefully(stream)
                    return
            if cs.cancelled_caught:
                await trio.aclose_forcefully(stream)
                return
        await self.serve_stream(stream, peer)

    async def serve_stream(self, stream: trio.abc.Stream, peer: tuple[str, int] | None, initial: bytes = b"",
                           head_deadline: float = _INF) -> None:
        """Serve an accepted (with TLS: handshaken) connection until it closes, then close it.

        ``initial`` are bytes already read from it (the h2 listener read them to tell HTTP/2 from
        HTTP/1.1); the first request head must then be complete by ``head_deadline`` (trio time).
        """
        settings = self._current_settings()
        c = _Conn(stream, self.new_proto(settings.proto_limits), peer, settings)
        # a client certificate is verified once, in the handshake: after a reload (which may bring a new
        # client CA or CRL) such a connection closes after its current request, so the client's next
        # request comes with a new handshake against the files now configured (as nginx's reload does)
        if isinstance(stream, trio.SSLStream):
            try:
                c.client_cert = peer_certificate(stream)
            except ValueError as exc:  # verified by OpenSSL yet unparsable: serve it as "no certificate"
                log.warning("client certificate from %s not readable, ignored: %s", peer, exc)
            if self.listener.client_auth != "none":
                c.verified_under = settings.gcfg
        if initial:
            c.proto.receive_data(initial)
            c.phase = "head"
            c.deadline = head_deadline
        self.connections.add(c)
        self.watcher.add(c)
        if self._no_connections.is_set():
            self._no_connections = trio.Event()
        try:
            with trio.CancelScope() as c.scope:
                if self.draining:
                    return
                mark = yields()
                while await self._one_request(c):
                    if c.proto.must_close or self.draining:
                        break
                    if c.verified_under is not None and self._current_settings().gcfg is not c.verified_under:
                        break
                    c.proto.start_next_cycle()
                    c.phase = "idle"
                    c.reused = True
                    self.cap.went_idle()
                    # a client that always has its next request ready (pipelining, cache hits, local
                    # answers) never blocks in recv: a request that did not yield yields once here,
                    # so that connection cannot starve the others (issue 12: p99 was 30x p50)
                    if yields() == mark:
                        await _fair_yield()
                    mark = yields()
            if c.timed_out and not c.responded and c.phase in ("head", "body"):
                with trio.move_on_after(1.0):
                    detail = "request head not received in time" if c.phase == "head" else \
                        c.pacer.reason() if c.pacer is not None else "request body not received in time"
                    await stream.send_all(raw_problem(408, detail, self.request_id_header))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
            pass
        except Exception:  # noqa: BLE001 - a bug in one connection must not take the gateway down
            log.exception("connection handler failed (peer %s)", peer)
        finally:
            self.watcher.discard(c)
            self.connections.discard(c)
            if not self.connections:
                self._no_connections.set()
            await trio.aclose_forcefully(stream)

    async def _read_head(self, c: _Conn) -> RequestHead | None:
        """Read a request head within the idle/header deadlines; None closes quietly."""
        proto = c.proto
        while True:
            event = proto.next_event()
            if event is NEED_DATA:
                if c.phase == "idle":
                    c.deadline = trio.current_time() + c.timeouts.idle
                data = await receive_some(c.sock, c.stream, READ_SIZE)
                if c.phase == "idle" and data:
                    c.phase = "head"
                    c.deadline = trio.current_time() + c.timeouts.header
                proto.receive_data(data)
                continue
            if type(event) is RequestHead:
                return event
            if event is CLOSED:
                return None
            raise ProtocolError(f"unexpected {event!r} before a request")

    def _build_request(self, c: _Conn, head: RequestHead) -> Request:
        target = head.target
        try:
            text = target.decode("ascii")
        except UnicodeDecodeError:
            raise _Reject(400, "non-ASCII request target") from None
        headers = Headers.from_raw(head.headers)
        for name, value in head.headers:
            if name == b"host" and not _valid_host(value):
                raise _Reject(400, "invalid Host header")
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
        length = head.length
        limit = c.limits.max_body_bytes
        if limit and length is not None and length > limit:
            raise _Reject(413, f"request body larger than {limit} bytes")
        if length == 0:
            if c.proto.next_event() is not END:  # a bodiless request's end is already parsed
                raise _Reject(400, "malformed request")
            body = Body(b"")
            c.body_done = True
        else:
            body = Body(self._body(c), length)
            c.body_done = False
        return Request(
            head.method, npath, query, headers, body,
            http_version=head.http_version, scheme=self.scheme, client=c.peer, raw_path=path,
            tls_client_cert=c.client_cert,
        )

    async def _body(self, c: _Conn) -> AsyncIterator[bytes]:
        """The request body as the parser decodes it, paced by a :class:`BodyPacer`.

        Every data event the parser already has is joined into one piece before it is
        yielded, so one read from the client becomes at most one upstream write however
        small the client's chunks are.
        """
        proto = c.proto
        if proto.waiting_for_100_continue:
            await self._send(c, proto.send_informational(100, b"Continue", []))
        limit = c.limits.max_body_bytes
        received = 0
        now = trio.current_time
        c.pacer = pacer = BodyPacer(c.limits, c.timeouts, now())
        try:
            event = proto.next_event()
            while True:
                if event is NEED_DATA:
                    prior, c.phase = c.phase, "body"
                    started = now()
                    c.deadline = pacer.deadline(started)
                    data = await receive_some(c.sock, c.stream, READ_SIZE)
                    c.deadline = _INF
                    c.phase = prior
                    pacer.waited += now() - started
                    proto.receive_data(data)
                elif type(event) is bytes:
                    nxt = proto.next_event()
                    if type(nxt) is bytes:  # tiny chunks: one piece per read, not one per chunk
                        parts = [event, nxt]
                        while type(nxt := proto.next_event()) is bytes:
                            parts.append(nxt)
                        event = b"".join(parts)
                    received += len(event)
                    pacer.received = received
                    if limit and (received > limit or proto.declared_body > limit):
                        raise BodyTooLarge(limit)  # a chunk header announcing too much is refused before its data
                    yield event
                    event = nxt
                    continue
                elif event is END:
                    c.body_done = True
                    return
                else:
                    raise ClientError("client closed the connection mid-body")
                event = proto.next_event()
        except ProtocolError as exc:
            raise ClientError(f"malformed request body: {exc.detail}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise ClientError("client connection broke mid-body") from None

    async def _send(self, c: _Conn, data: bytes) -> int:
        if data:
            c.deadline = trio.current_time() + c.timeouts.send
            await send_all(c.sock, c.stream, data)
            c.deadline = _INF
        return len(data)

    async def _one_request(self, c: _Conn) -> bool:
        """Serve one request on ``c``; False when the connection must close."""
        c.responded = False
        try:
            head = await self._read_head(c)
            if head is None:
                return False
            if c.verified_under is not None and self._current_settings().gcfg is not c.verified_under:
                return False  # reloaded while idle: not served under the old verification (see serve_stream)
            c.deadline = _INF
            c.phase = "busy"
            c.keep_alive = head.keep_alive
            request = self._build_request(c, head)
        except (_Reject, ProtocolError) as rej:
            if isinstance(rej, ProtocolError):
                rej = _Reject(rej.status, rej.detail)
            c.phase = "send"
            c.responded = True
            await self._send(c, raw_problem(rej.status, rej.detail, self.request_id_header))
            return False

        gateway = self.gateway
        ctx, response = await gateway.handle(request)
        cancelled = False
        try:
            keep_alive = await self._send_response(c, ctx, request, response)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            ctx.error = ctx.error or "client connection closed"
            keep_alive = False
        except ProtocolError as exc:  # e.g. a plugin set a header value with CR/LF: nothing was sent yet
            ctx.error = ctx.error or f"response refused: {exc.detail}"
            ctx.status = 500
            await self._send(c, raw_problem(500, "the response had an invalid header field", self.request_id_header))
            keep_alive = False
        except trio.Cancelled:
            cancelled = True
            ctx.error = ctx.error or ("client too slow" if c.timed_out else "connection closed by shutdown")
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. upstream died mid-body: abort this connection only
            ctx.error = ctx.error or f"response aborted: {type(exc).__name__}: {exc}"
            keep_alive = False
        finally:
            if cancelled:  # clean up all the same
                with trio.CancelScope(shield=True):
                    await response.body.aclose()
                    await gateway.finish(ctx)
            else:
                await response.body.aclose()
                await gateway.finish(ctx)
        return keep_alive

    async def _send_response(self, c: _Conn, ctx: Any, request: Request, response: Response) -> bool:
        if response.status == 101 and response.upgrade is not None:
            await self._tunnel(c, ctx, response)
            return False
        proto = c.proto
        status = response.status
        body = response.body
        method = request.method
        no_body = method == "HEAD" or status in _NO_BODY_STATUS or status < 200
        raw = response.headers.raw
        close = not c.body_done or self.draining
        hdrs = []
        for n, v in raw:
            if n in _RESPONSE_FRAMING:
                if n == b"connection" and b"close" in v.lower():
                    close = True
                elif n == b"content-length" and method == "HEAD":
                    hdrs.append((n, v))
                continue
            hdrs.append((n, v))
        reason = response.reason or _REASONS.get(status, b"")
        c.phase = "send"
        c.responded = True
        data = body.data if body.is_buffered else None
        length = len(data) if data is not None else body.length
        out = proto.send_response(status, reason, hdrs, no_body=no_body, length=length,
                                  close=close or not c.keep_alive)
        if no_body:
            ctx.bytes_out += await self._send(c, out + proto.send_end())
        elif data is not None:  # one write for head, body and end
            ctx.bytes_out += await self._send(c, out + proto.send_data(data) + proto.send_end() if data else
                                              out + proto.send_end())
        else:
            ctx.bytes_out += await self._send(c, out)
            async for chunk in body:
                ctx.bytes_out += await self._send(c, proto.send_data(chunk))
            ctx.bytes_out += await self._send(c, proto.send_end())
        ctx.bytes_in = request.body.received
        return not proto.must_close

    async def _tunnel(self, c: _Conn, ctx: Any, response: Response) -> None:
        """After the upstream switched protocols: copy bytes both ways until one side closes."""
        upstream, up_pending = response.upgrade  # type: ignore[misc]
        proto = c.proto
        c.phase = "send"
        c.responded = True
        idle = c.timeouts.tunnel_idle  # the connection's deadline moves with every byte, either way
        c.deadline = trio.current_time() + idle
        await c.stream.send_all(proto.send_informational(101, response.reason or b"Switching Protocols",
                                                         list(response.headers.raw)))
        while proto.next_event() not in (PAUSED, NEED_DATA):
            pass
        client_pending = proto.trailing_data
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
                        c.deadline = trio.current_time() + idle
                        await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                scope.cancel()

            async with trio.open_nursery() as n:
                n.start_soon(pump, c.stream, upstream, n.cancel_scope)
                n.start_soon(pump, upstream, c.stream, n.cancel_scope)
        finally:
            await trio.aclose_forcefully(upstream)

