"""The h11 reference and the fast (llhttp) backend give the same verdict on every input."""

from __future__ import annotations

from typing import Any

import pytest

from triogate.http1 import (
    CLOSED, END, NEED_DATA, PAUSED, Limits, ProtocolError, RequestHead, ResponseHead, fast_available,
)
from triogate.http1.reference import H11ClientConnection, H11ServerConnection

BACKENDS: list[Any] = [("h11", H11ServerConnection, H11ClientConnection)]
if fast_available:
    from triogate.http1.fast import FastClientConnection, FastServerConnection

    BACKENDS.append(("fast", FastServerConnection, FastClientConnection))


def test_fast_backend_is_installed_in_the_workspace() -> None:
    # make install pulls in the "fast" extra; without it this module would test h11 alone
    assert fast_available


REQUESTS: dict[str, tuple[bytes, Any]] = {
    # name: (raw bytes, expected: list of simplified events, or an error status)
    "simple GET": (b"GET /a?x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
                   [("GET", b"/a?x=1", 0), "END"]),
    "POST with length": (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                         [("POST", b"/a", 5), b"hello", "END"]),
    "chunked": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                [("POST", b"/a", None), b"hello", "END"]),
    "chunk extension": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
                        [("POST", b"/a", None), b"abc", "END"]),
    "pipelined": (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                  [("GET", b"/a", 0), "END", ("GET", b"/b", 0), "END"]),
    # 60 kB of small pipelined requests in one read is not one 60 kB head (the fast backend said 431)
    "2000 pipelined, more than the head limit in all": (
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 2000, [("GET", b"/a", 0), "END"] * 2000),
    "chunked then pipelined GET": (
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
        [("POST", b"/a", None), b"hi", "END", ("GET", b"/b", 0), "END"]),
    "GET, chunked POST, GET": (
        b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n",
        [("GET", b"/a", 4), b"\r\n\r\n", "END", ("POST", b"/b", None), b"\r\n\r\n", "END", ("GET", b"/c", 0), "END"]),
    "chunk size 2**63": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\nabc", 400),
    "chunk size overflow": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc", 400),
    "chunk extension quoted": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3;a=\"b;c\"\r\nabc\r\n0\r\n\r\n", [("POST", b"/a", None), b"abc", "END"]),
    "bad trailer": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", 400),
    "double space in request line": (b"GET  /a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "HTTP/1.0 without Host": (b"GET /a HTTP/1.0\r\n\r\n", [("GET", b"/a", 0), "END"]),
    "CL and TE": (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "duplicate CL same": (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    "duplicate CL different": (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    "CL list": (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    "CL plus sign": (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    "obs-fold": (b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    "bare LF": (b"GET /a HTTP/1.1\nHost: x\n\n", 400),
    "bare CR": (b"GET /a HTTP/1.1\rHost: x\r\n\r\n", 400),
    "space before colon": (b"GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    "NUL in value": (b"GET /a HTTP/1.1\r\nHost: x\x00y\r\n\r\n", 400),
    "bad chunk size": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    "chunk bare LF": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400),
    "TE gzip": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    "two TE headers": (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400, 501}),
    "missing Host": (b"GET /a HTTP/1.1\r\n\r\n", 400),
    "two Hosts": (b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    "HTTP/2.0 line": (b"GET /a HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "too many headers": (b"GET /a HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    "head too large": (b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431),
    "target too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
}


H11_STALLS = {"chunk bare LF": [("POST", b"/a", None)]}


def _simplify(ev: Any) -> Any:
    if type(ev) is RequestHead:
        return (ev.method, ev.target, ev.length)
    if ev is END:
        return "END"
    return ev


def _drive_server(cls: Any, data: bytes, chunk: int) -> Any:
    conn = cls(Limits(max_request_line=8192, max_header_bytes=32768, max_headers=100))
    out: list[Any] = []
    body = b""
    keep_alive = True
    try:
        for i in range(0, len(data), chunk):
            conn.receive_data(data[i:i + chunk])
            while True:
                ev = conn.next_event()
                if ev is NEED_DATA:
                    break
                if type(ev) is bytes:
                    body += ev
                    continue
                if body:
                    out.append(body)
                    body = b""
                out.append(_simplify(ev))
                if type(ev) is RequestHead:
                    keep_alive = ev.keep_alive
                if ev is END:
                    conn.send_response(200, b"OK", [], no_body=False, length=0, close=not keep_alive)
                    conn.send_end()
                    if conn.must_close:
                        return out
                    conn.start_next_cycle()
    except ProtocolError as exc:
        return exc.status
    return out


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
@pytest.mark.parametrize("chunk", [1 << 16, 7, 1], ids=["whole", "7-bytes", "byte-by-byte"])
def test_request_verdicts(name: str, backend: Any, chunk: int) -> None:
    data, expected = REQUESTS[name]
    if chunk == 1 and len(data) > 2000:
        chunk = 64  # byte-by-byte over 40 kB through h11 is slow and adds nothing
    got = _drive_server(backend[1], data, chunk)
    if backend[0] == "h11" and name in H11_STALLS:
        # h11 waits for a CRLF that never comes: the message never completes, so nothing is
        # forwarded whole and the body timeout (408) ends it; llhttp answers 400 at once.
        assert got == [expected_head for expected_head in H11_STALLS[name]]
    elif isinstance(expected, set):
        assert got in expected
    else:
        assert got == expected


RESPONSES: dict[str, tuple[str, bytes, Any]] = {
    "content-length": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [(200, 2), b"ok", "END"]),
    "chunked with trailer": ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
                             [(200, None), b"ok", "END"]),
    "HEAD with length": ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", [(200, 0), "END"]),
    "204": ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", [(204, 0), "END"]),
    "304 with length": ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", [(304, 0), "END"]),
    "100 then 200": ("GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                     [(100, 0), (200, 2), b"ok", "END"]),
    "close-delimited": ("GET", b"HTTP/1.1 200 OK\r\n\r\nabc", [(200, None), b"abc", "END"]),
    "bad status line": ("GET", b"HTTP/1.1 2x0 OK\r\n\r\n", 502),
    "CL and TE": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  "either"),
}


def _drive_client(cls: Any, method: str, data: bytes) -> Any:
    conn = cls(65536)
    conn.send_request(method, b"/", [(b"host", b"x")], length=0, framed=False)
    conn.send_end()
    out: list[Any] = []
    body = b""
    try:
        conn.receive_data(data)
        conn.receive_data(b"")
        while True:
            ev = conn.next_event()
            if ev in (NEED_DATA, CLOSED, PAUSED):
                break
            if type(ev) is bytes:
                body += ev
                continue
            if body:
                out.append(body)
                body = b""
            out.append((ev.status, ev.length) if type(ev) is ResponseHead else "END")
            if ev is END:
                break
    except ProtocolError as exc:
        return exc.status
    return out


@pytest.mark.parametrize("name", list(RESPONSES))
@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_response_parsing(name: str, backend: Any) -> None:
    method, data, expected = RESPONSES[name]
    got = _drive_client(backend[2], method, data)
    if expected == "either":
        # ambiguous framing from an upstream: h11 lets TE win (RFC 9112 §6.3), llhttp refuses; both are safe
        assert got in (502, [(200, None), "END"])
    else:
        assert got == expected


@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_response_framing(backend: Any) -> None:
    conn = backend[1](Limits())
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert type(conn.next_event()) is RequestHead
    assert conn.next_event() is END
    head = conn.send_response(200, b"OK", [(b"content-type", b"text/plain")], no_body=False, length=None, close=False)
    body = conn.send_data(b"hello") + conn.send_end()
    assert b"transfer-encoding: chunked\r\n" in head.lower()
    assert body == b"5\r\nhello\r\n0\r\n\r\n"
    assert not conn.must_close


@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_header_injection_is_refused(backend: Any) -> None:
    conn = backend[1](Limits())
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event()
    with pytest.raises(ProtocolError):
        conn.send_response(200, b"OK", [(b"x-evil", b"a\r\nSet-Cookie: owned=1")], no_body=False, length=0,
                           close=False)


@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_declared_chunk_size_is_known_before_its_data(backend: Any) -> None:
    conn = backend[1](Limits())
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\nabc")
    assert type(conn.next_event()) is RequestHead
    assert conn.next_event() == b"abc"
    assert conn.declared_body == 0x100000
