"""The ``h2`` listener: one front door that sends HTTP/2 to hypercorn and HTTP/1.1 to the native server.

Every connection is accepted here (TLS is done here too, offering ALPN ``h2`` and
``http/1.1``). ALPN ``h2``, or on plaintext the HTTP/2 connection preface as the first
bytes, gives the connection to hypercorn's HTTP/2 protocol; anything else goes to the
native :class:`~triogate.server.HTTP1Server` with the bytes already read, so HTTP/1.1 on
this port is held to exactly the native listener's rules, parser, limits and timeouts
(hypercorn's own h11 path never sees a byte). HTTP/2 connections pass through a frame
guard that bounds what hypercorn and the h2 library do not: client RST_STREAM floods
(rapid reset, CVE-2023-44487), floods of tiny or empty DATA frames and of PING, SETTINGS,
PRIORITY or WINDOW_UPDATE frames, and header blocks spread over CONTINUATION frames larger
than the header limit; each ends the connection with GOAWAY(ENHANCE_YOUR_CALM).
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from typing import Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr, wrap_app

from .asgi import ASGIApp
from .config import ListenerConfig
from .handler import RequestHandler
from .listeners import ListenerTLS
from .server import HTTP1Server

__all__ = ["PREFACE", "FrameGuard", "H2Server"]

log = logging.getLogger("triogate.h2")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
READ_SIZE = 65536  # the first read takes what came: an HTTP/1.1 head is usually parsed without another
_DATA, _HEADERS, _RST_STREAM, _WINDOW_UPDATE, _CONTINUATION = 0x0, 0x1, 0x3, 0x8, 0x9
_END_STREAM = 0x1
_END_HEADERS = 0x4
SMALL_DATA = 1024  # a DATA payload under this many bytes is "small" (budgeted when it does not end its stream)
MAX_EMPTY_DATA_IN_A_ROW = 10  # empty DATA frames without END_STREAM (Envoy allows 1 by default)
MAX_CONTINUATIONS = 32  # CONTINUATION frames in one header block (h2 itself allows 64 before an error)
_ENHANCE_YOUR_CALM = 0xB


def goaway(last_stream_id: int, error_code: int) -> bytes:
    """A GOAWAY frame (RFC 9113 §6.8)."""
    return struct.pack(">I", 8)[1:] + bytes((0x7, 0)) + struct.pack(">III", 0, last_stream_id & 0x7FFFFFFF, error_code)


class FrameGuard:
    """Reads the frame headers of a client's HTTP/2 byte stream as it passes (payloads are skipped,
    not copied) and says when the client crosses a limit hypercorn and h2 do not enforce.

    Every frame costs hypercorn and h2 far more CPU than its bytes (about 25-45 µs for a DATA
    frame, 5-10 µs for a control frame), so frames that carry little are budgeted per connection:

    - ``max_resets`` RST_STREAM frames per second (rapid reset, CVE-2023-44487: a client opens and
      cancels streams so the concurrent-stream limit never binds, while the gateway keeps working
      on each);
    - ``max_small_data`` DATA frames per second with a payload under ``SMALL_DATA`` bytes that do not
      end their stream (data dribble, CVE-2019-9511; 1 MiB as 1-byte frames would cost ~45 CPU
      seconds), and at most ``MAX_EMPTY_DATA_IN_A_ROW`` empty ones in a row (empty-frames flood,
      CVE-2019-9518: they carry nothing);
    - ``max_control`` PING, SETTINGS, PRIORITY, WINDOW_UPDATE and other frames (unknown extension
      types, which h2 parses and ignores) per second (PING and SETTINGS floods, CVE-2019-9512 and
      -9515; PRIORITY floods, CVE-2019-9513); a WINDOW_UPDATE that
      answers a DATA frame the gateway sent (up to two per frame: stream and connection) is free,
      so a fast download is never limited;
    - a header block (HEADERS plus CONTINUATION payloads) above ``max_header_block`` bytes or in
      more than ``MAX_CONTINUATIONS`` CONTINUATION frames (CONTINUATION floods, CVE-2019-9516).

    ``max_small_data`` or ``max_control`` 0 turns that rule off. The per-second budgets count in
    fixed one-second windows.
    """

    __slots__ = ("max_resets", "max_header_block", "max_small_data", "max_control", "_skip", "_head",
                 "_window", "_resets", "_small", "_control", "_empty_run", "_credit", "_out_skip", "_out_head",
                 "_block", "_frames", "last_stream_id", "reason")

    def __init__(self, max_resets: int, max_header_block: int, max_small_data: int = 0, max_control: int = 0) -> None:
        self.max_resets = max_resets
        self.max_header_block = max_header_block
        self.max_small_data = max_small_data
        self.max_control = max_control
        self._skip = len(PREFACE)
        self._head = b""
        self._window = -1.0  # start of the current one-second window
        self._resets = self._small = self._control = 0  # counted in it
        self._empty_run = 0  # empty non-final DATA frames since the last DATA or HEADERS with a payload
        self._credit = 0  # WINDOW_UPDATEs the DATA frames sent so far justify
        self._out_skip = 0
        self._out_head = b""
        self._block = -1  # bytes of the header block being received; -1: none open
        self._frames = 0  # its CONTINUATION frames
        self.last_stream_id = 0
        self.reason = ""

    def _tick(self) -> None:
        now = trio.current_time()
        if now - self._window >= 1.0:
            self._window, self._resets, self._small, self._control = now, 0, 0, 0

    def feed(self, data: bytes) -> bool:
        """Account for ``data`` received from the client; True when the connection must be ended."""
        i, n = 0, len(data)
        while i < n:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            take = 9 - len(self._head)
            self._head += data[i:i + take]
            i += take
            if len(self._head) < 9:
                return False
            head, self._head = self._head, b""
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            self._skip = length
            if kind == _DATA:
                if flags & _END_STREAM or length >= SMALL_DATA:
                    if length:
                        self._empty_run = 0
                    continue
                if not length:
                    self._empty_run += 1
                    if self._empty_run > MAX_EMPTY_DATA_IN_A_ROW and self.max_small_data:
                        self.reason = "too many empty DATA frames"
                        return True
                elif self._empty_run:
                    self._empty_run = 0
                self._tick()
                self._small += 1
                if self._small > self.max_small_data > 0:
                    self.reason = "too many small DATA frames"
                    return True
            elif kind == _HEADERS or kind == _CONTINUATION:
                if kind == _HEADERS:
                    self.last_stream_id = max(self.last_stream_id, int.from_bytes(head[5:9], "big") & 0x7FFFFFFF)
                    self._block = self._frames = 0
                    if length:
                        self._empty_run = 0
                else:
                    self._frames += 1
                self._block += length
                if self._block > self.max_header_block or self._frames > MAX_CONTINUATIONS:
                    self.reason = "header block over the header limit or in too many CONTINUATION frames"
                    return True
                if flags & _END_HEADERS:
                    self._block = -1
            elif kind == _RST_STREAM:
                self._tick()
                self._resets += 1
                if self._resets > self.max_resets:
                    self.reason = "too many stream resets"
                    return True
            else:  # PING, SETTINGS (ACKs too: the gateway never pings, and sends SETTINGS once), PRIORITY,
                # WINDOW_UPDATE, and the frames h2 ignores (unknown extension types) or refuses (PUSH_PROMISE)
                if kind == _WINDOW_UPDATE and self._credit:
                    self._credit -= 1
                    continue
                self._tick()
                self._control += 1
                if self._control > self.max_control > 0:
                    self.reason = "too many control frames (PING, SETTINGS, PRIORITY, WINDOW_UPDATE, unknown types)"
                    return True
        return False

    def sent(self, data: bytes | bytearray | memoryview) -> None:
        """Account for ``data`` sent to the client: each DATA frame earns two WINDOW_UPDATEs."""
        i, n = 0, len(data)
        while i < n:
            if self._out_skip:
                step = min(self._out_skip, n - i)
                self._out_skip -= step
                i += step
                continue
            take = 9 - len(self._out_head)
            self._out_head += bytes(data[i:i + take])
            i += take
            if len(self._out_head) < 9:
                return
            head, self._out_head = self._out_head, b""
            self._out_skip = int.from_bytes(head[:3], "big")
            if head[3] == _DATA and self._out_skip:
                self._credit += 2


class _GuardedStream(trio.abc.Stream):
    """The connection as hypercorn sees it: replays bytes the front door already read, and ends the
    connection with GOAWAY(ENHANCE_YOUR_CALM) when the frame guard says so."""

    def __init__(self, inner: trio.abc.Stream, initial: bytes, guard: FrameGuard) -> None:
        self.inner = inner
        self.pending = initial
        self.guard = guard
        self.calmed = False
        self.send_lock = trio.Lock()  # replaced by hypercorn's own send lock (see _H2Connection)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.calmed:
            return b""
        if self.pending:
            data, self.pending = self.pending, b""
        else:
            data = await self.inner.receive_some(max_bytes)
        if self.guard.feed(data):
            await self._calm()
            return b""  # hypercorn sees the end of the connection and closes its streams
        return data

    async def _calm(self) -> None:
        self.calmed = True
        log.warning("HTTP/2 client ended with GOAWAY(ENHANCE_YOUR_CALM): %s", self.guard.reason)
        with trio.move_on_after(1.0):  # lingering close: a client still sending must get to read the GOAWAY,
            try:                        # which a close with unread input (a TCP reset) would destroy
                async with self.send_lock:
                    await self.inner.send_all(goaway(self.guard.last_stream_id, _ENHANCE_YOUR_CALM))
                    if isinstance(self.inner, trio.SocketStream):
                        await self.inner.send_eof()
                while await self.inner.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        await trio.aclose_forcefully(self.inner)  # responses still in flight are not sent

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.guard.sent(data)
        await self.inner.send_all(data)  # hypercorn sends under its send lock

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if not isinstance(self.inner, trio.SocketStream):
            raise AttributeError("send_eof")  # TLS: hypercorn just closes
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


class _H2Protocol(H2Protocol):
    """hypercorn's HTTP/2 protocol with two fixes.

    hypercorn advertises ``h2_max_header_list_size`` but sets it as an already-acknowledged
    setting, so h2's HPACK decoder keeps its 64 KiB default: the limit is applied here. And a
    non-ASCII :method or :path (malformed, RFC 9113 §8.1.1), on which hypercorn would crash the
    connection, is reset with PROTOCOL_ERROR.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.connection.decoder.max_header_list_size = self.config.h2_max_header_list_size

    async def _create_stream(self, request: Any) -> None:
        for name, value in request.headers:
            if (name == b":path" or name == b":method") and not value.isascii():
                self.connection.reset_stream(request.stream_id, error_code=0x1)
                return
        await super()._create_stream(request)


class _H2Connection(TCPServer):
    """hypercorn's per-connection server, started on HTTP/2 directly (the TLS handshake and the
    protocol choice were made by the front door, so its h11 path is never entered)."""

    def __init__(self, app: Any, config: HyperConfig, context: WorkerContext, stream: _GuardedStream,
                 sock: Any, tls: bool) -> None:
        super().__init__(app, config, context, ConnectionState({}), stream)  # type: ignore[arg-type]
        stream.send_lock = self.send_lock  # a GOAWAY of the guard never interleaves with hypercorn's writes
        self.sock = sock
        self.tls = tls

    async def run(self) -> None:
        try:
            client = parse_socket_addr(self.sock.family, self.sock.getpeername())
            server = parse_socket_addr(self.sock.family, self.sock.getsockname())
            async with TaskGroup() as task_group:
                self._task_group = task_group
                self.protocol = _H2Protocol(  # type: ignore[assignment]
                    self.app, self.config, self.context, task_group, ConnectionState(self.state.copy()),
                    self.tls, client, server, self.protocol_send,
                )
                await self.protocol.initiate()
                await self.idle_task.restart(self._task_group, self._idle_timeout)
                await self._read_data()
                # The connection is gone (client EOF, protocol error, timeout or GOAWAY): no stream can send
                # anything more, and hypercorn would wait forever for a closed stream's response to drain,
                # keeping the request (and its upstream call) alive. End them; their cleanup is shielded.
                task_group._nursery.cancel_scope.cancel()
        except OSError:
            pass
        finally:
            await self._close()


def hypercorn_config(gcfg: Any) -> HyperConfig:
    """hypercorn's HTTP/2 settings from the gateway's limits and timeouts."""
    hc = HyperConfig()
    hc.accesslog = None
    hc.errorlog = logging.getLogger("triogate.hypercorn")
    t, lim = gcfg.timeouts, gcfg.limits
    hc.keep_alive_timeout = t.idle
    # a connection with an open stream is not idle: bound every read, so a stalled client goes
    hc.read_timeout = max(t.idle, t.body)  # type: ignore[assignment]
    hc.graceful_timeout = t.drain
    hc.h2_max_concurrent_streams = lim.h2_max_concurrent_streams
    hc.h2_max_header_list_size = lim.max_header_bytes  # the same limit an HTTP/1.1 head has
    hc.h2_max_inbound_frame_size = 2**14  # the RFC 9113 minimum (also hypercorn's default)
    return hc


class H2Server:
    """Serves one ``protocol = "h2"`` listening socket: HTTP/2 (h2c prior knowledge, TLS ALPN h2)
    through hypercorn, HTTP/1.1 through the native listener."""

    def __init__(self, gateway: RequestHandler, listener: ListenerConfig, sock: Any) -> None:
        self.gateway = gateway
        self.listener = listener
        self.sock = sock
        self.tls = ListenerTLS(listener, ["h2", "http/1.1"], gateway.config.gateway)
        self.ssl_context: ssl.SSLContext | None = self.tls.context
        self.http1 = HTTP1Server(gateway, listener, self.ssl_context)
        self.app = wrap_app(ASGIApp(gateway), 0, "asgi")
        self.context = WorkerContext(None)
        self._sniffing: set[trio.CancelScope] = set()  # connections not yet given to a protocol
        self._hc: tuple[Any, HyperConfig] | None = None
        self._nursery: trio.Nursery | None = None
        self._accept_scope: trio.CancelScope | None = None
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await nursery.start(self.http1.run, None)
                    listener = trio.SocketListener(self.sock)
                    with trio.CancelScope() as self._accept_scope:
                        task_status.started()
                        # one connection cap per listener, HTTP/1.1 and HTTP/2 alike
                        await self.http1.cap.accept_forever(listener, nursery, self._connection)
        finally:
            self.sock.close()
            self._done.set()

    def stop_accepting(self) -> None:
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        self.http1.stop_accepting()
        for scope in self._sniffing:
            scope.cancel()
        if self._nursery is not None:  # idle HTTP/2 connections close; busy ones send GOAWAY once idle
            self._nursery.start_soon(self.context.terminated.set)

    async def drain(self) -> None:
        await self._done.wait()

    def close_all(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        except OSError:
            pass
        sock = stream.socket
        try:
            addr = sock.getpeername()
            peer = (addr[0], addr[1])
        except OSError:
            await trio.aclose_forcefully(stream)
            return
        t = self.gateway.config.gateway.timeouts
        initial = b""
        head_deadline = trio.current_time() + t.header
        tls: trio.SSLStream[Any] | None = None
        ready = False
        with trio.CancelScope() as sniffing:
            self._sniffing.add(sniffing)
            try:
                if self._accept_scope is None or self._accept_scope.cancel_called:
                    sniffing.cancel()  # draining
                if self.ssl_context is not None:  # ALPN decides
                    tls = trio.SSLStream(stream, self.tls.current(self.gateway.config.gateway), server_side=True)
                    with trio.move_on_at(head_deadline):
                        await tls.do_handshake()
                        ready = True
                else:
                    # The HTTP/2 preface or HTTP/1.1? Wait for the first bytes as long as an idle keep-alive
                    # connection may wait, then for the rest of the preface within the header timeout.
                    with trio.move_on_after(t.idle):
                        initial = await stream.receive_some(READ_SIZE)
                    head_deadline = trio.current_time() + t.header
                    with trio.move_on_at(head_deadline):
                        while initial and len(initial) < len(PREFACE) and PREFACE.startswith(initial):
                            more = await stream.receive_some(READ_SIZE)
                            if not more:
                                break
                            initial += more
                    ready = bool(initial)
            except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
                ready = False
            finally:
                self._sniffing.discard(sniffing)
        if not ready or sniffing.cancel_called:  # closed, failed or slow handshake, idle, draining
            await trio.aclose_forcefully(tls or stream)
            return
        if tls is not None:
            if tls.selected_alpn_protocol() == "h2":
                await self._serve_h2(tls, b"", sock)
            else:
                await self.http1.serve_stream(tls, peer)
        elif initial.startswith(PREFACE):
            await self._serve_h2(stream, initial, sock)
        else:  # HTTP/1.1 (or garbage, or a stalled preface: the native rules answer it, 408 included)
            await self.http1.serve_stream(stream, peer, initial, head_deadline)

    async def _serve_h2(self, stream: trio.abc.Stream, initial: bytes, sock: Any) -> None:
        gcfg = self.gateway.config.gateway
        if self._hc is None or self._hc[0] is not gcfg:  # a reload applies to new connections
            self._hc = (gcfg, hypercorn_config(gcfg))
        lim = gcfg.limits
        guard = FrameGuard(lim.h2_max_resets_per_second, lim.max_header_bytes, lim.h2_max_small_data_frames_per_second,
                           lim.h2_max_control_frames_per_second)
        conn = _H2Connection(self.app, self._hc[1], self.context, _GuardedStream(stream, initial, guard), sock,
                             tls=isinstance(stream, trio.SSLStream))
        try:
            await conn.run()
        except Exception as exc:
            log.warning("HTTP/2 connection ended by an error: %s: %s", type(exc).__name__, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            await trio.aclose_forcefully(stream)

