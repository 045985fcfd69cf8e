"""The fast HTTP/1.1 backend: llhttp (through httptools) parses, framing is written here.

llhttp is strict where it matters for smuggling (CL+TE, duplicate Content-Length,
bad chunk sizes, bare LF, obs-fold are errors); :mod:`.rules` adds the rest, so
the verdicts match the h11 reference backend (the conformance tests run both).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

import httptools

from .chunked import ChunkedDecoder
from .events import CLOSED, END, NEED_DATA, PAUSED, ProtocolError, RequestHead, ResponseHead
from .rules import Limits, _known_good_names, check_controls, check_request, valid_header, valid_name

__all__ = ["FastServerConnection", "FastClientConnection"]

_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}
_CRLF = b"\r\n"
_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _status_line(status: int, reason: bytes) -> bytes:
    key = (status, reason)
    line = _STATUS_LINES.get(key)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_STATUS_LINES) < 512:
            _STATUS_LINES[key] = line
    return line


def _names_valid(headers: list[tuple[bytes, bytes]]) -> bool:
    # a loop over the set of names seen before: a generator calling valid_name per field cost 3x more
    for name, _ in headers:
        if name not in _known_good_names and not valid_name(name):
            return False
    return True


def _serialize_headers(parts: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
    """Append header lines; names must be tokens and values free of CR, LF and other controls.

    Checked on the whole block at once (one C-level scan and three counts) rather than
    per field, since most fields come from a parser that already refused bad ones.
    """
    block = b"".join([b"%s: %s\r\n" % field for field in headers])
    n = len(headers)
    if (block.count(b"\n") != n or block.count(b"\r") != n or block.count(b"\r\n") != n
            or _CONTROLS.search(block) is not None or not _names_valid(headers)):
        bad = next((name for name, value in headers if not valid_header(name, value)), b"?")
        raise ProtocolError(f"invalid header field {bad[:40]!r}", 500)
    parts.append(block)


class _Takeover(Exception):
    """Raised from on_headers_complete: a chunked body is decoded by :class:`ChunkedDecoder`."""


class FastServerConnection:
    """Server side: parse requests (pipelining included), frame responses.

    llhttp parses heads and Content-Length bodies; chunked bodies go to
    :class:`ChunkedDecoder` so every declared chunk size is seen. To hand over
    exactly at the end of a head, the connection tracks how far into the current
    input every message reaches (``_offset``): a head ends at the first CRLFCRLF
    after its start (llhttp has refused bare CR/LF), a Content-Length body after
    its bytes.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._events: deque[Any] = deque()
        self._headers: list[tuple[bytes, bytes]] = []
        self._url = b""
        self._in_head = False
        self._between = True        # no partial message buffered
        self._eof = False
        self._failed = False
        self._chunked_out = False
        self._close_delimited = False
        self._close = False
        self._client_11 = True
        self._data = b""            # the input being parsed
        self._offset = 0            # how much of _data the messages so far account for
        self._head_start = 0        # where the current head starts in _data (may be < 0: earlier input)
        self._head_acc = b""        # earlier input that belongs to the current head
        self._decoder: ChunkedDecoder | None = None
        self.declared_body = 0      # body bytes received or announced by chunk sizes so far
        self.trailing_data = b""
        self.waiting_for_100_continue = False

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = []
        self._url = b""
        self._in_head = True
        self._between = False
        self._head_start = self._offset
        self._head_acc = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:
            self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        acc = self._head_acc
        if acc:  # the head spans several inputs
            whole = acc + self._data
            end = whole.find(b"\r\n\r\n", max(len(acc) - 3, 0))
            self._offset = end + 4 - len(acc)
            head = whole[:end]
        else:
            end = self._data.find(b"\r\n\r\n", self._head_start)
            self._offset = end + 4
            head = self._data[self._head_start:end]
        try:
            if len(head) > self.limits.max_header_bytes:
                raise ProtocolError("request head too large", 431)
            line_end = head.find(b"\r\n")
            if (head[:line_end] if line_end >= 0 else head).count(b" ") != 2:
                raise ProtocolError("malformed request line")
            check_controls(head)  # llhttp refuses these too; the rule is ours, whatever its version
            req = check_request(self._parser.get_method().decode("ascii"), self._url, self._headers,
                                self._parser.get_http_version(), self.limits)
        except ProtocolError as exc:
            self._events.append(exc)
            return
        self._events.append(req)
        self.declared_body = 0
        if req.chunked:
            raise _Takeover()

    def on_body(self, body: bytes) -> None:
        self._offset += len(body)
        self.declared_body += len(body)
        self._events.append(bytes(body))

    def on_message_complete(self) -> None:
        self._events.append(END)
        self._between = True

    # -- interface
    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        if self._failed:
            return
        if self._decoder is not None:
            data = self._decode_chunked(data)
            if not data:
                return
        self._feed(data)
        # only the unfinished head counts: pipelined requests before it in the same input are complete
        # (counting the whole input refused a 64 KiB read of small pipelined requests as one huge head)
        if self._in_head and len(self._head_acc) + len(self._data) - self._head_start > self.limits.max_header_bytes:
            self._events.append(ProtocolError("request head too large", 431))
            self._failed = True

    def _feed(self, data: bytes) -> None:
        while data:
            if self._in_head:  # a head continued from earlier input
                self._head_acc += self._data[self._head_start:]
                self._head_start = 0
            self._data = data
            self._offset = 0
            if self._between:
                self._head_start = 0
            try:
                self._parser.feed_data(data)
                return
            except httptools.HttpParserCallbackError as exc:
                if not isinstance(exc.__context__, _Takeover):
                    raise
            except httptools.HttpParserUpgrade as exc:
                offset = exc.args[0] if exc.args else len(data)
                self.trailing_data = data[offset:]
                self._events.append(PAUSED)
                self._failed = True
                return
            except httptools.HttpParserError as exc:
                # a transfer coding we do not implement is 501, as the h11 backend answers
                status = 501 if "Invalid `Transfer-Encoding`" in str(exc) else 400
                self._events.append(ProtocolError(f"malformed request: {exc}", status))
                self._failed = True
                return
            # a chunked body starts at _offset: decode it; what follows is the next request
            self._decoder = ChunkedDecoder()
            self._parser = httptools.HttpRequestParser(self)
            data = self._decode_chunked(data[self._offset:])

    def _decode_chunked(self, data: bytes) -> bytes:
        decoder = self._decoder
        assert decoder is not None
        out: list[Any] = []
        try:
            rest = decoder.feed(data, out)
        except ProtocolError as exc:
            self._events.extend(out)
            self._events.append(exc)
            self._failed = True
            return b""
        self.declared_body = decoder.declared
        self._events.extend(out)
        if decoder.done:
            self._decoder = None
            self._between = True
            self._in_head = False
            return rest
        return b""

    def next_event(self) -> Any:
        events = self._events
        if events:
            ev = events.popleft()
            if type(ev) is ProtocolError:
                events.clear()
                raise ev
            if type(ev) is RequestHead:
                self.waiting_for_100_continue = ev.expect_continue
                self._client_11 = ev.http_version == "1.1"
            elif type(ev) is bytes:
                self.waiting_for_100_continue = False
            return ev
        if self._eof:
            if self._between:
                return CLOSED
            raise ProtocolError("connection closed mid-request")
        return NEED_DATA

    def send_informational(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        self.waiting_for_100_continue = False
        parts = [_status_line(status, reason)]
        _serialize_headers(parts, headers)
        parts.append(_CRLF)
        return b"".join(parts)

    def send_response(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], *,
                      no_body: bool, length: int | None, close: bool) -> bytes:
        """Head bytes with framing: Content-Length when known, else chunked (or close-delimited for 1.0)."""
        self.waiting_for_100_continue = False
        parts = [_status_line(status, reason)]
        _serialize_headers(parts, headers)
        self._chunked_out = False
        self._close_delimited = False
        if not no_body:
            if length is not None:
                parts.append(b"content-length: %d\r\n" % length)
            elif self._client_11:
                parts.append(b"transfer-encoding: chunked\r\n")
                self._chunked_out = True
            else:
                self._close_delimited = True
        self._close = close or self._close_delimited
        if self._close:
            parts.append(b"connection: close\r\n")
        parts.append(_CRLF)
        return b"".join(parts)

    def send_data(self, data: bytes) -> bytes:
        if self._chunked_out:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def send_end(self) -> bytes:
        return b"0\r\n\r\n" if self._chunked_out else b""

    @property
    def must_close(self) -> bool:
        return self._close or self._failed

    def start_next_cycle(self) -> None:
        self.waiting_for_100_continue = False


class FastClientConnection:
    """Client side: frame requests, parse responses (one at a time; no pipelining).

    A byte after the end of the final response (llhttp starting another message, or data
    after a HEAD response's head) makes the connection not reusable: an upstream must not
    answer the next request with stale bytes.
    """

    def __init__(self, max_head_bytes: int = 65536) -> None:
        self.max_head_bytes = max_head_bytes
        self._parser = httptools.HttpResponseParser(self)
        self._events: deque[Any] = deque()
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._in_head = False
        self._method = "GET"
        self._chunked_out = False
        self._eof = False
        self._done = True
        self._keep_alive = True
        self._close_delimited = False
        self._failed = False
        self.trailing_data = b""
        self.received_any = False
        self._head_bytes = 0
        self._last_status = 0
        self._buf = b""             # HEAD only: the input being parsed (and the tail of an unfinished head)
        self._scan = 0              # HEAD only: where in _buf the next response head starts
        self._tail = b""

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        if self._done:  # a message after the final response: the upstream sent bytes no request asked for
            self._failed = True
        self._headers = []
        self._reason = b""
        self._in_head = True

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:
            self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        p = self._parser
        status = self._last_status = p.get_status_code()
        self._keep_alive = p.should_keep_alive()
        length: int | None = None
        chunked = False
        for n, v in self._headers:
            if n == b"content-length":
                length = int(v)
            elif n == b"transfer-encoding":
                chunked = True
        if chunked:
            length = None
        if self._method == "HEAD" or status in (204, 304) or status < 200:
            length = 0
        self._close_delimited = length is None and not chunked and status >= 200
        if self._method == "HEAD":
            # llhttp refused bare CR/LF, so this head ends at the first CRLFCRLF after its start
            end = self._buf.find(b"\r\n\r\n", self._scan)
            self._scan = end + 4 if end >= 0 else len(self._buf) + 1  # not found: never reuse
        self._events.append(ResponseHead(status, self._reason, self._headers, p.get_http_version(), length))
        if self._method == "HEAD" and status >= 200:
            # llhttp cannot be told a HEAD response has no body: finish it here, start a fresh parser.
            self._events.append(END)
            self._done = True
            self._parser = httptools.HttpResponseParser(self)
            raise _HeadDone()

    def on_body(self, body: bytes) -> None:
        self._events.append(bytes(body))

    def on_message_complete(self) -> None:
        # 1xx interim responses complete too; only a final response ends the exchange.
        if self._last_status < 200:
            return
        self._events.append(END)
        self._done = True

    # -- interface
    def send_request(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], *,
                     length: int | None, framed: bool) -> bytes:
        """Head bytes; ``framed`` adds Content-Length (or chunked when ``length`` is None)."""
        self._method = method
        self._done = False
        self._events.clear()
        parts = [method.encode("ascii") + b" " + target + b" HTTP/1.1\r\n"]
        _serialize_headers(parts, headers)
        self._chunked_out = False
        if framed:
            if length is None:
                parts.append(b"transfer-encoding: chunked\r\n")
                self._chunked_out = True
            else:
                parts.append(b"content-length: %d\r\n" % length)
        parts.append(_CRLF)
        return b"".join(parts)

    def send_data(self, data: bytes) -> bytes:
        if self._chunked_out:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def send_end(self) -> bytes:
        return b"0\r\n\r\n" if self._chunked_out else b""

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        self.received_any = True
        if self._failed:
            return
        head = self._method == "HEAD"
        if head:  # a head may span inputs: keep the last 3 bytes of an unfinished one to find its CRLFCRLF
            self._buf = (self._tail if self._in_head else b"") + data
            self._scan = 0
        try:
            self._parser.feed_data(data)
        except _HeadDone:
            self._failed = self._scan != len(self._buf)  # bytes after a HEAD response: never reuse
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadDone):
                self._failed = self._scan != len(self._buf)
            else:
                self._events.append(ProtocolError(f"invalid response: {exc}", 502))
                self._failed = True
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self.trailing_data = data[offset:]
            self._failed = True  # the connection leaves HTTP
        except httptools.HttpParserError as exc:
            self._events.append(ProtocolError(f"invalid response: {exc}", 502))
            self._failed = True
        if self._in_head:
            if head:
                self._tail = self._buf[-3:]
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._events.append(ProtocolError("response head too large", 502))
                self._failed = True
        else:
            self._head_bytes = 0

    def next_event(self) -> Any:
        events = self._events
        if events:
            ev = events.popleft()
            if type(ev) is ProtocolError:
                raise ev
            return ev
        if self._eof:
            if self._close_delimited and not self._done:
                self._done = True
                self._keep_alive = False
                return END
            if self._done:
                return CLOSED
            raise ProtocolError("upstream closed the connection mid-response", 502)
        return NEED_DATA

    @property
    def reusable(self) -> bool:
        return self._done and self._keep_alive and not self._failed and not self._eof and not self._events

    def start_next_cycle(self) -> None:
        self._head_bytes = 0
        self.received_any = False


class _HeadDone(Exception):
    """Raised from a callback to stop llhttp after a HEAD response's head."""
