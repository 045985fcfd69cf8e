"""The reference HTTP/1.1 backend: h11 behind the same interface as the fast backend.

h11 tolerates a few things a proxy must not forward (bare LF, obs-fold, a repeated
identical Content-Length); :func:`.rules.check_raw_head` rejects them here.
"""

from __future__ import annotations

from typing import Any

import h11

from .chunked import MAX_CHUNKED_TOTAL
from .events import CLOSED, END, NEED_DATA, PAUSED, ProtocolError, ResponseHead
from .rules import Limits, check_raw_head, check_request, valid_header

__all__ = ["H11ServerConnection", "H11ClientConnection"]


def _chunk_remaining(conn: h11.Connection) -> int:
    """Bytes of the current chunk h11 has not delivered yet (from the chunk-size line).

    h11 keeps the declared chunk size in its chunked reader and does not expose it;
    with another h11 layout this returns 0 and only the running total is checked.
    """
    return getattr(getattr(conn, "_reader", None), "_bytes_in_chunk", 0)


def _checked(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    for name, value in headers:
        if not valid_header(name, value):
            raise ProtocolError(f"invalid header field {name[:40]!r}", 500)
    return headers


class H11ServerConnection:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self._head = bytearray()
        self._in_head = True
        self._client_11 = True

    @property
    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]

    @property
    def waiting_for_100_continue(self) -> bool:
        return self._conn.client_is_waiting_for_100_continue

    def receive_data(self, data: bytes) -> None:
        if self._in_head and len(self._head) <= self.limits.max_header_bytes:
            self._head += data
        self._conn.receive_data(data)

    def next_event(self) -> Any:
        if self._pending_end:
            self._pending_end = False
            return END
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if "too long" in str(exc) or "exceeds" in str(exc):
                status = 431
            raise ProtocolError(f"malformed request: {exc}", status) from None
        t = type(event)
        if t is h11.Data:
            self._received += len(event.data)
            # h11 flags chunk_start only when a chunk's header and data arrive together
            self.declared_body = self._received + _chunk_remaining(self._conn)
            if self.declared_body > MAX_CHUNKED_TOTAL:
                raise ProtocolError("chunk size out of range")
            return bytes(event.data)
        if t is h11.EndOfMessage:
            return END
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        if t is h11.Request:
            self._received = self.declared_body = 0
            self._in_head = False
            head = bytes(self._head)
            end = head.find(b"\r\n\r\n")
            if end > self.limits.max_header_bytes or (end < 0 and len(head) > self.limits.max_header_bytes):
                raise ProtocolError("request head too large", 431)
            check_raw_head(head[: end if end >= 0 else len(head)])
            req = check_request(event.method.decode("ascii"), event.target, list(event.headers),
                                event.http_version.decode("ascii"), self.limits)
            self._client_11 = req.http_version == "1.1"
            if req.length == 0:
                nxt = self._conn.next_event()  # h11 has the EndOfMessage of a bodiless request ready
                assert type(nxt) is h11.EndOfMessage
                self._pending_end = True
            return req
        if t is h11.ConnectionClosed:
            return CLOSED
        raise ProtocolError(f"unexpected event {t.__name__}")

    _pending_end = False
    _received = 0
    declared_body = 0  # body bytes received or announced by chunk sizes so far

    def send_informational(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        return self._conn.send(h11.InformationalResponse(status_code=status, headers=_checked(headers),
                                                         reason=reason)) or b""

    def send_response(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], *,
                      no_body: bool, length: int | None, close: bool) -> bytes:
        hdrs = list(_checked(headers))
        if not no_body and length is not None:
            hdrs.append((b"content-length", b"%d" % length))
        if close:
            hdrs.append((b"connection", b"close"))
        try:
            return self._conn.send(h11.Response(status_code=status, headers=hdrs, reason=reason)) or b""
        except h11.LocalProtocolError as exc:
            raise ProtocolError(f"cannot send response: {exc}", 500) from None

    def send_data(self, data: bytes) -> bytes:
        return self._conn.send(h11.Data(data=data)) or b""

    def send_end(self) -> bytes:
        return self._conn.send(h11.EndOfMessage()) or b""

    @property
    def must_close(self) -> bool:
        c = self._conn
        return c.our_state is not h11.DONE or c.their_state is not h11.DONE

    def start_next_cycle(self) -> None:
        self._conn.start_next_cycle()
        self._in_head = True
        self._head = bytearray(self._conn.trailing_data[0])


class H11ClientConnection:
    def __init__(self, max_head_bytes: int = 65536) -> None:
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_bytes)
        self._method = "GET"
        self.received_any = False

    @property
    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]

    def send_request(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], *,
                     length: int | None, framed: bool) -> bytes:
        self._method = method
        hdrs = list(_checked(headers))
        if framed:
            hdrs.append((b"transfer-encoding", b"chunked") if length is None else (b"content-length", b"%d" % length))
        try:
            return self._conn.send(h11.Request(method=method, target=target, headers=hdrs)) or b""
        except h11.LocalProtocolError as exc:
            raise ProtocolError(f"cannot send request: {exc}", 500) from None

    def send_data(self, data: bytes) -> bytes:
        try:
            return self._conn.send(h11.Data(data=data)) or b""
        except h11.LocalProtocolError as exc:  # e.g. more body than the Content-Length it announced
            raise ProtocolError(f"cannot send request body: {exc}", 500) from None

    def send_end(self) -> bytes:
        try:
            return self._conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise ProtocolError(f"cannot end request body: {exc}", 500) from None

    def receive_data(self, data: bytes) -> None:
        if data:
            self.received_any = True
        self._conn.receive_data(data)

    def next_event(self) -> Any:
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ProtocolError(f"invalid response: {exc}", 502) from None
        t = type(event)
        if t is h11.Data:
            return bytes(event.data)
        if t is h11.EndOfMessage:
            return END
        if event is h11.NEED_DATA:
            return NEED_DATA
        if t is h11.Response or t is h11.InformationalResponse:
            length: int | None = None
            headers = list(event.headers)
            if self._method == "HEAD" or event.status_code in (204, 304) or event.status_code < 200:
                length = 0
            else:
                chunked = False
                for n, v in headers:
                    if n == b"content-length":
                        length = int(v)
                    elif n == b"transfer-encoding":
                        chunked = True
                if chunked:
                    length = None
            return ResponseHead(event.status_code, event.reason, headers, event.http_version.decode("ascii"), length)
        if t is h11.ConnectionClosed:
            return CLOSED
        if event is h11.PAUSED:
            return PAUSED
        raise ProtocolError(f"unexpected event {t.__name__}", 502)

    @property
    def reusable(self) -> bool:
        """Both sides done and not one byte after the response's end (stale bytes poison the next exchange)."""
        c = self._conn
        return c.our_state is h11.DONE and c.their_state is h11.DONE and not c.trailing_data[0]

    def start_next_cycle(self) -> None:
        self._conn.start_next_cycle()
        self.received_any = False
