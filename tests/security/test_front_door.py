"""One front door: HTTP/1.1 on an ``h2`` listener is the native listener; HTTP/2 requests pass the
same checks; HTTP/2 denial-of-service limits hold.

Every test attacks a running gateway over a real socket. HTTP/2 attacks are written frame by
frame (hyperframe + hpack), since a well-behaved client library refuses to send them; the
normal HTTP/2 client is the h2 library.
"""

from __future__ import annotations

import importlib.util
import json
import ssl
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
import pytest
import trio
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from triogate import Response
from triogate.testing import raw_request

from .conftest import OK_RESPONSE, route_to

_TESTS = Path(__file__).resolve().parent.parent


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_front_door_{name}", _TESTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


SMUGGLING = _load("test_smuggling")  # its CASES, EXPECTED and SMUGGLED: one battery for both listeners
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOL_ERROR, FRAME_SIZE_ERROR, ENHANCE_YOUR_CALM = 0x1, 0x6, 0xB

# valid requests at the edges: both listeners must forward each exactly the same way
VALID = {
    "chunk-extension": b"POST /ce HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                       b"3;ext=1\r\nabc\r\n0\r\n\r\n",
    "uppercase-chunk-size": b"POST /uc HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                            b"A\r\n0123456789\r\n0\r\n\r\n",
    "chunked-trailer": b"POST /tr HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                       b"3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
    "content-length": b"POST /cl HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    "absolute-form": b"GET http://example.com/a?b=1 HTTP/1.1\r\nhost: other\r\nconnection: close\r\n\r\n",
    "dot-segments-inside": b"GET /a/b/../c/./d HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "http-1.0-no-host": b"GET /old HTTP/1.0\r\n\r\n",
    "host-with-port": b"GET /p HTTP/1.1\r\nhost: x:8080\r\nconnection: close\r\n\r\n",
    "ipv6-host": b"GET /v6 HTTP/1.1\r\nhost: [::1]:80\r\nconnection: close\r\n\r\n",
    "pipelined": b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nPOST /two HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc"
                 b"GET /three HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "tab-in-value": b"GET /tab HTTP/1.1\r\nhost: x\r\nx-a: 1\t2\r\nconnection: close\r\n\r\n",
    "first-byte-like-preface": b"PUT /put HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nconnection: close\r\n\r\nz",
}


def _listen(kind: str, **tls: Any) -> list[dict[str, Any]]:
    return [{"address": "127.0.0.1:0", "protocol": "h2" if kind == "h2" else "http1", **tls}]


def _statuses(raw: bytes) -> list[int]:
    out, i = [], 0
    while (i := raw.find(b"HTTP/1.", i)) >= 0:
        out.append(int(raw[i + 9:i + 12]))
        i += 12
    return out


# --------------------------------------------------------------------------- (a) differential HTTP/1.1


async def test_same_verdicts_on_native_and_h2_listener(both_parsers, gateway_factory, raw_upstream):
    """The smuggling battery gets identical verdicts on both listeners, and nothing reaches an upstream."""
    verdicts: dict[str, dict[str, int]] = {}
    for kind in ("native", "h2"):
        up = await raw_upstream()
        gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen(kind)}})
        verdicts[kind] = {}
        for name, data in sorted(SMUGGLING.CASES.items()):
            raw = await raw_request(gw.port, data + SMUGGLING.SMUGGLED, timeout=3)
            assert raw.startswith(b"HTTP/1.1 "), (kind, name, raw[:200])
            assert b"application/problem+json" in raw and b'"request_id"' in raw, (kind, name, raw[:300])
            assert raw.count(b"HTTP/1.1 ") == 1, (kind, name)
            verdicts[kind][name] = int(raw[9:12])
        assert up.heads == [] and up.data == b"", (kind, up.data[:300])
    assert verdicts["h2"] == verdicts["native"]
    assert verdicts["native"] == {n: SMUGGLING.EXPECTED.get(n, 400) for n in SMUGGLING.CASES}


async def test_same_forwarding_of_valid_edge_cases_on_both_listeners(both_parsers, gateway_factory, upstream_factory):
    seen: dict[str, Any] = {}
    for kind in ("native", "h2"):
        up = await upstream_factory()
        gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen(kind)}})
        statuses = {}
        for name, data in VALID.items():
            raw = await raw_request(gw.port, data, timeout=3)
            statuses[name] = _statuses(raw)
        netloc = up.url.split("//")[1]
        forwarded = [(r.method, r.path, r.query, r.headers.get("host").replace(netloc, "UPSTREAM"), r.body.data)
                     for r in up.requests]
        seen[kind] = (statuses, forwarded)
    assert seen["h2"] == seen["native"]
    statuses, forwarded = seen["native"]
    assert all(s and all(x == 200 for x in s) for s in statuses.values()), statuses
    assert statuses["pipelined"] == [200, 200, 200]
    assert ("POST", "/ce", "", "UPSTREAM", b"abc") in forwarded
    assert ("GET", "/a", "b=1", "UPSTREAM", b"") in forwarded  # absolute-form: the target's path and query


# --------------------------------------------------------------------------- (b) the CL.TE desync, by bytes


async def test_cl_te_desync_never_reaches_the_upstream(front, secure_gateway, raw_upstream):
    """The finding: h11 decoded chunked while the adapter framed by Content-Length, so the
    upstream saw a second, smuggled request. Now it is a 400 and the upstream sees no byte."""
    up = await raw_upstream()
    gw = await secure_gateway(route_to(up))
    smuggled = b"GET /admin HTTP/1.1\r\nhost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    attack = (b"POST /public HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\ntransfer-encoding: chunked\r\n\r\n"
              % len(body)) + body
    raw = await raw_request(gw.port, attack, timeout=3)
    assert raw.startswith(b"HTTP/1.1 400"), raw[:300]
    assert b"application/problem+json" in raw
    assert raw.count(b"HTTP/1.1 ") == 1
    assert up.data == b""  # not the POST, not the smuggled GET
    # the listener still serves a well-formed request afterwards
    ok = await raw_request(gw.port, b"GET /fine HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", timeout=3)
    assert ok.startswith(b"HTTP/1.1 200"), ok[:300]
    assert [h.split(b"\r\n")[0] for h in up.heads] == [b"GET /fine HTTP/1.1"]


async def test_http11_on_h2_port_keeps_native_timeouts(both_parsers, gateway_factory, raw_upstream):
    """A slow head on the h2 port, or a preface that stalls, gets the native 408 within the header timeout."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2"), "timeouts": {"header": 0.5}}})
    for partial in (b"GET / HTTP/1.1\r\nhost: x\r\n", PREFACE[:10], b"P"):
        with trio.fail_after(3):
            raw = await raw_request(gw.port, partial, timeout=2.5)
        assert raw.startswith(b"HTTP/1.1 408"), (partial, raw[:200])
        assert b"application/problem+json" in raw
    assert up.data == b""


async def test_preface_one_byte_at_a_time_is_http2(gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        for b in PREFACE:
            await stream.send_all(bytes([b]))
            await trio.sleep(0.005)
        h = RawH2(stream, preface_sent=True)
        await h.start()
        await h.send(h.headers_frame(1, _req("/bytewise")))
        status, _, _ = await h.response(1)
    assert status == 200
    assert [x.split(b"\r\n")[0] for x in up.heads] == [b"GET /bytewise HTTP/1.1"]


async def test_tls_alpn_http11_gets_native_rules(tmp_path, both_parsers, gateway_factory, raw_upstream):
    self_signed = _load("test_tls").self_signed
    cert, key = self_signed(tmp_path)
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2", tls_cert=cert, tls_key=key)}})
    ctx = ssl.create_default_context(cafile=cert)
    ctx.set_alpn_protocols(["http/1.1"])

    async def exchange(data: bytes) -> bytes:
        stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", gw.port, ssl_context=ctx)
        out = b""
        async with stream:
            await stream.do_handshake()
            assert stream.selected_alpn_protocol() == "http/1.1"
            await stream.send_all(data)
            with trio.move_on_after(3):
                try:
                    while chunk := await stream.receive_some(65536):
                        out += chunk
                except trio.BrokenResourceError:
                    pass
        return out

    bad = await exchange(SMUGGLING.CASES["cl-and-te"] + SMUGGLING.SMUGGLED)
    assert bad.startswith(b"HTTP/1.1 400"), bad[:200]
    assert up.data == b""
    good = await exchange(b"GET /tls HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert good.startswith(b"HTTP/1.1 200"), good[:200]
    assert b"x-forwarded-proto: https" in up.heads[0].lower()


# --------------------------------------------------------------------------- a frame-level HTTP/2 client


def _req(path: str, method: str = "GET", authority: str = "localhost", extra: list | None = None) -> list:
    return [(":method", method), (":path", path), (":scheme", "http"), (":authority", authority)] + (extra or [])


class RawH2:
    """Writes arbitrary frames (the attacks) and reads what the server answers."""

    def __init__(self, stream: trio.abc.Stream, preface_sent: bool = False) -> None:
        self.stream = stream
        self.preface_sent = preface_sent
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.settings: dict[int, int] = {}
        self.goaway: GoAwayFrame | None = None
        self.closed = False
        self.responses: dict[int, dict[str, Any]] = {}
        self.resets: dict[int, int] = {}

    async def start(self) -> None:
        out = b"" if self.preface_sent else PREFACE
        await self.send(out + SettingsFrame(0).serialize())
        with trio.fail_after(3):
            while not self.settings:
                await self._read()

    async def send(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True

    def headers_frame(self, sid: int, headers: list, end_stream: bool = True, end_headers: bool = True) -> bytes:
        f = HeadersFrame(sid)
        f.data = self.encoder.encode(headers)
        f.flags.add("END_HEADERS") if end_headers else None
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    async def _read(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.closed = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            frame.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            await self._on(frame)

    async def _on(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            self.settings = dict(frame.settings) or {0: 0}
            ack = SettingsFrame(0)
            ack.flags.add("ACK")
            await self.send(ack.serialize())
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame
        elif isinstance(frame, HeadersFrame):
            r = self.responses.setdefault(frame.stream_id, {"body": b"", "ended": False})
            for n, v in self.decoder.decode(frame.data):
                r[n if isinstance(n, str) else n.decode()] = v if isinstance(v, str) else v.decode()
            if "END_STREAM" in frame.flags:
                r["ended"] = True
        elif isinstance(frame, DataFrame):
            r = self.responses.setdefault(frame.stream_id, {"body": b"", "ended": False})
            r["body"] += frame.data
            if "END_STREAM" in frame.flags:
                r["ended"] = True
        elif isinstance(frame, RstStreamFrame):
            self.resets[frame.stream_id] = frame.error_code

    async def response(self, sid: int, timeout: float = 5) -> tuple[int, dict[str, Any], bytes]:
        with trio.fail_after(timeout):
            while not self.responses.get(sid, {}).get("ended"):
                assert not self.closed and self.goaway is None, f"connection ended (goaway={self.goaway})"
                assert sid not in self.resets, f"stream reset: {self.resets[sid]}"
                await self._read()
        r = self.responses[sid]
        return int(r[":status"]), r, r["body"]

    async def until_closed(self, timeout: float = 5) -> None:
        """Read until the server ends the connection (GOAWAY and/or close)."""
        with trio.fail_after(timeout):
            while not self.closed:
                await self._read()


async def _h2(port: int) -> RawH2:
    h = RawH2(await trio.open_tcp_stream("127.0.0.1", port))
    await h.start()
    return h


async def normal_h2_get(port: int, path: str) -> int:
    """A well-behaved client (the h2 library) on its own connection."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        conn.send_headers(1, _req(path), end_stream=True)
        await stream.send_all(conn.data_to_send())
        with trio.fail_after(5):
            while True:
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        return int(dict(ev.headers)[":status"])
                out = conn.data_to_send()
                if out:
                    await stream.send_all(out)


# --------------------------------------------------------------------------- (c) HTTP/2 request checks

# refused by the gateway's checks: a 400 problem+json on that stream, the connection lives on
REFUSED_400 = {
    "method-not-a-token": _req("/x", method="G(T"),
    "method-with-space": _req("/x", method="GE T"),
    "authority-with-userinfo": _req("/x", authority="user@victim"),
    "authority-with-path": _req("/x", authority="x/evil"),
    "authority-bad-port": _req("/x", authority="x:80a"),
    "authority-with-space": _req("/x", authority="x y"),
    "value-with-ctl": _req("/x", extra=[("x-a", "1\x012")]),
    "value-with-del": _req("/x", extra=[("x-a", "1\x7f2")]),
    "value-with-vtab": _req("/x", extra=[("x-a", "1\x0b2")]),
    "name-not-a-token": _req("/x", extra=[("x(a)", "1")]),
    "name-with-quote": _req("/x", extra=[('x"a', "1")]),
    "content-length-twice": _req("/x", method="POST", extra=[("content-length", "0"), ("content-length", "0")]),
    "path-not-origin-form": _req("*", method="OPTIONS"),
    "path-with-fragment": _req("/a#b"),
    "path-bad-percent": _req("/a%zz"),
    "path-above-root": _req("/../etc/passwd"),
}

# refused by the h2 library before the gateway sees them (RFC 9113 §8.1.1 malformed, which h2
# treats as a connection error, as §5.4.1 allows): GOAWAY(PROTOCOL_ERROR), never forwarded
REFUSED_BY_PROTOCOL = {
    "authority-host-differ": _req("/x", authority="a.example", extra=[("host", "b.example")]),
    "connection-header": _req("/x", extra=[("connection", "close")]),
    "transfer-encoding": _req("/x", method="POST", extra=[("transfer-encoding", "chunked")]),
    "keep-alive": _req("/x", extra=[("keep-alive", "timeout=5")]),
    "upgrade": _req("/x", extra=[("upgrade", "websocket")]),
    "proxy-connection": _req("/x", extra=[("proxy-connection", "keep-alive")]),
    "te-gzip": _req("/x", extra=[("te", "gzip")]),
    "value-with-nul": _req("/x", extra=[("x-a", "1\x002")]),
    "value-with-lf": _req("/x", extra=[("x-a", "1\n2")]),
    "value-with-cr": _req("/x", extra=[("x-a", "1\r2")]),
    "uppercase-name": _req("/x", extra=[("X-A", "1")]),
    "name-with-space": _req("/x", extra=[("x a", "1")]),
    "no-authority-no-host": [(":method", "GET"), (":path", "/x"), (":scheme", "http")],
    "duplicate-method": _req("/x") + [(":method", "POST")],
    "empty-path": _req(""),
    "content-length-plus": _req("/x", method="POST", extra=[("content-length", "+0")]),
    "empty-name": _req("/x", extra=[("", "v")]),  # 0-length names (CVE-2019-9516)
    "many-empty-fields": _req("/x", extra=[("", "")] * 50),
}


@pytest.mark.parametrize("name", sorted(REFUSED_400))
async def test_h2_request_refused_with_problem_json(name, gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, REFUSED_400[name]))
    status, headers, body = await h.response(1)
    assert status == 400, (name, status, body)
    assert headers["content-type"] == "application/problem+json"
    doc = json.loads(body)
    assert doc["status"] == 400 and doc["request_id"] == headers["x-request-id"]
    # the connection still serves a valid request
    await h.send(h.headers_frame(3, _req("/after")))
    assert (await h.response(3))[0] == 200
    assert [x.split(b"\r\n")[0] for x in up.heads] == [b"GET /after HTTP/1.1"]


@pytest.mark.parametrize("name", sorted(REFUSED_BY_PROTOCOL))
async def test_h2_malformed_request_ends_the_connection(name, gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, REFUSED_BY_PROTOCOL[name]))
    await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == PROTOCOL_ERROR, (name, h.goaway)
    assert 1 not in h.responses
    assert up.data == b""
    assert await normal_h2_get(gw.port, "/still-up") == 200


@pytest.mark.parametrize("headers", [_req("/caf\u00e9"), _req("/x", method="G\u00c9T")], ids=["path", "method"])
async def test_h2_non_ascii_request_line_is_reset(headers, gateway_factory, raw_upstream):
    """Malformed (RFC 9113 §8.1.1): RST_STREAM(PROTOCOL_ERROR); hypercorn alone would crash the connection."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, headers))
    with trio.fail_after(3):
        while 1 not in h.resets:
            assert not h.closed
            await h._read()
    assert h.resets[1] == PROTOCOL_ERROR
    await h.send(h.headers_frame(3, _req("/after")))
    assert (await h.response(3))[0] == 200
    assert [x.split(b"\r\n")[0] for x in up.heads] == [b"GET /after HTTP/1.1"]


async def test_h2_limits_of_http11_apply(gateway_factory, raw_upstream):
    """The HTTP/1.1 header-count and body-size limits hold for HTTP/2 requests too."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2"),
                                                            "limits": {"max_headers": 5, "max_body_bytes": 10}}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, _req("/x", extra=[(f"x-{i}", "1") for i in range(6)])))
    assert (await h.response(1))[0] == 431
    await h.send(h.headers_frame(3, _req("/x", method="POST", extra=[("content-length", "11")]), end_stream=False))
    assert (await h.response(3))[0] == 413
    await h.send(h.headers_frame(5, _req("/x", method="POST"), end_stream=False))  # no length: counted
    data = DataFrame(5, data=b"x" * 11)
    data.flags.add("END_STREAM")
    await h.send(data.serialize())
    assert (await h.response(5))[0] == 413
    assert b"x" * 11 not in up.data and not any(x.startswith(b"GET") for x in up.heads)


async def test_h2_te_trailers_is_accepted_and_not_forwarded(gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, _req("/te", extra=[("te", "trailers")])))
    assert (await h.response(1))[0] == 200
    assert b"\r\nte:" not in up.heads[0].lower()


@pytest.mark.parametrize("sent", [b"0123456789", b"01"])
async def test_h2_body_disagreeing_with_content_length_fails(sent, gateway_factory, raw_upstream):
    """Never more bytes upstream than declared; a short body never completes a request upstream."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, _req("/cl", method="POST", extra=[("content-length", "5")]), end_stream=False))
    half = DataFrame(1, data=sent[:2])
    rest = DataFrame(1, data=sent[2:])
    rest.flags.add("END_STREAM")
    await h.send(half.serialize())
    await trio.sleep(0.2)  # the request is on its way upstream with its first bytes
    await h.send(rest.serialize())
    with trio.move_on_after(3):
        while not h.closed and 1 not in h.resets and not h.responses.get(1, {}).get("ended"):
            await h._read()
    assert h.responses.get(1, {}).get(":status") != "200", h.responses
    await trio.sleep(0.3)
    assert len(up.heads) <= 1
    body_upstream = up.data[len(up.heads[0]):] if up.heads else b""
    if len(sent) > 5:
        assert len(body_upstream) <= 5 and b"56789" not in up.data, body_upstream  # nothing past the declared 5
    else:
        assert len(body_upstream) < 5, body_upstream  # the short body never completes the request upstream


# --------------------------------------------------------------------------- (d) HTTP/2 DoS limits

async def test_h2_advertises_limits_that_agree_with_http1(gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {
        "listen": _listen("h2"), "limits": {"max_header_bytes": 8000, "h2_max_concurrent_streams": 7}}})
    h = await _h2(gw.port)
    assert h.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 7
    assert h.settings[SettingsFrame.MAX_HEADER_LIST_SIZE] == 8000
    assert h.settings.get(SettingsFrame.MAX_FRAME_SIZE, 16384) == 16384


async def test_h2_more_streams_than_allowed_are_refused(gateway_factory, raw_upstream):
    def responder(head: bytes, conn: Any) -> bytes | None:
        return None if head.startswith(b"GET /stall") else OK_RESPONSE  # the attack's streams stay open

    up = await raw_upstream(responder)
    gw = await gateway_factory({**route_to(up), "gateway": {
        "listen": _listen("h2"), "limits": {"h2_max_concurrent_streams": 3}}})
    h = await _h2(gw.port)
    await h.send(b"".join(h.headers_frame(sid, _req(f"/stall{sid}")) for sid in (1, 3, 5, 7, 9)))
    await h.until_closed()
    # h2 treats a stream over the advertised limit as a connection error
    assert h.goaway is not None and h.goaway.error_code == PROTOCOL_ERROR and h.goaway.last_stream_id <= 5, h.goaway
    await trio.sleep(0.3)
    assert len([x for x in up.heads if x.startswith(b"GET /stall")]) <= 3, up.heads
    assert await normal_h2_get(gw.port, "/still-up") == 200


async def test_h2_oversized_frame_is_a_frame_size_error(gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, _req("/big", method="POST"), end_stream=False))
    big = DataFrame(1, data=b"x" * 16385)
    big.flags.add("END_STREAM")
    await h.send(big.serialize())
    await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == FRAME_SIZE_ERROR
    assert b"x" * 100 not in up.data
    assert await normal_h2_get(gw.port, "/still-up") == 200


async def test_h2_header_list_over_the_limit_is_refused(gateway_factory, raw_upstream):
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2"),
                                                            "limits": {"max_header_bytes": 4000}}})
    h = await _h2(gw.port)
    # one frame, well under the limit on the wire (HPACK indexes the repeats), over it decoded
    await h.send(h.headers_frame(1, _req("/hdrs", extra=[("x-pad", "p" * 1500)] * 3)))
    await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == ENHANCE_YOUR_CALM, h.goaway
    assert up.data == b""
    # and a header block over the limit on the wire
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, _req("/hdrs", extra=[("x-pad", "p" * 3000), ("x-pad2", "q" * 3000)])))
    await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == ENHANCE_YOUR_CALM, h.goaway
    assert up.data == b""
    assert await normal_h2_get(gw.port, "/still-up") == 200


@pytest.mark.parametrize("piece", [0, 2000])  # too many frames; too many bytes
async def test_h2_continuation_flood_ends_the_connection(piece, gateway_factory, raw_upstream):
    """Empty CONTINUATION frames (CPU) or ever more header bytes (memory): both end the connection."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    await h.send(h.headers_frame(1, _req("/flood"), end_headers=False))
    sent = 0
    with trio.move_on_after(5):
        while not h.closed and sent < 5000:
            cont = ContinuationFrame(1, data=b"\x00" * piece)  # never END_HEADERS
            await h.send(cont.serialize() * 50)
            sent += 50
            with trio.move_on_after(0.01):
                await h._read()
    await h.until_closed()
    assert h.closed and sent < 5000, sent
    assert h.goaway is not None and h.goaway.error_code == ENHANCE_YOUR_CALM, h.goaway
    assert up.data == b""
    assert await normal_h2_get(gw.port, "/still-up") == 200


async def test_h2_rapid_reset_is_cut_off(gateway_factory, raw_upstream):
    """CVE-2023-44487: HEADERS then RST_STREAM, as fast as possible. The connection is ended with
    GOAWAY(ENHANCE_YOUR_CALM) after the reset budget; the upstream sees a bounded number of requests;
    a normal client is served all along."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2"),
                                                            "limits": {"h2_max_resets_per_second": 50}}})
    h = await _h2(gw.port)
    normal: list[int] = []

    async def normal_client() -> None:
        for i in range(5):
            normal.append(await normal_h2_get(gw.port, f"/normal{i}"))
            await trio.sleep(0.05)

    async with trio.open_nursery() as n:
        n.start_soon(normal_client)
        sid, batches = 1, 0
        with trio.move_on_after(5):
            while not h.closed and batches < 100:
                out = b""
                for _ in range(20):
                    rst = RstStreamFrame(sid)
                    rst.error_code = 0x8  # CANCEL
                    out += h.headers_frame(sid, _req(f"/r{sid}")) + rst.serialize()
                    sid += 2
                await h.send(out)
                batches += 1
                with trio.move_on_after(0.005):
                    await h._read()
        await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == ENHANCE_YOUR_CALM, h.goaway
    assert sid < 2 * 20 * 100, "the attacker was never cut off"
    attack = [x for x in up.heads if x.startswith(b"GET /r")]
    assert len(attack) <= 50 + 100 + 20, len(attack)  # the reset budget plus what was in flight
    assert normal == [200] * 5


# --------------------------------------------------------------------------- shutdown


async def test_h2_listener_drains_both_protocols(gateway_factory, upstream_factory):
    """Shutdown: stop accepting, let in-flight HTTP/2 and HTTP/1.1 requests on the h2 port finish."""
    arrived = trio.Semaphore(0)

    async def slow(req):
        arrived.release()
        await trio.sleep(0.5)
        return {"ok": True}

    up = await upstream_factory(slow)
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    results: dict[str, Any] = {}

    async def h2_client() -> None:
        results["h2"] = await normal_h2_get(gw.port, "/h2")

    async def h1_client() -> None:
        results["h1"] = await raw_request(gw.port, b"GET /h1 HTTP/1.1\r\nhost: x\r\n\r\n", timeout=4)

    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(h2_client)
            n.start_soon(h1_client)
            await arrived.acquire()
            await arrived.acquire()
            await gw.stop()
    assert results["h2"] == 200
    assert results["h1"].startswith(b"HTTP/1.1 200") and b"connection: close" in results["h1"].lower()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", gw.port)


async def test_websocket_on_the_h2_port_is_the_native_tunnel(both_parsers, gateway_factory, raw_upstream):
    """hypercorn closed WebSocket requests with 1003; on the h2 port they are now the native tunnel."""
    def responder(head: bytes, conn: Any) -> bytes:
        if head.startswith(b"GET /ws"):
            return (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                    b"sec-websocket-accept: x\r\n\r\n")
        return b"pong:" + head  # bytes through the tunnel, echoed

    up = await raw_upstream(responder)
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                              b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
        got = b""
        with trio.fail_after(3):
            while b"\r\n\r\n" not in got:
                got += await stream.receive_some(65536)
        assert got.startswith(b"HTTP/1.1 101"), got
        await stream.send_all(b"ping\r\n\r\n")
        with trio.fail_after(3):
            while b"pong:ping" not in got:
                got += await stream.receive_some(65536)


# --------------------------------------------------------------------------- floods of frames that carry little


def _data(sid: int, data: bytes) -> bytes:
    return DataFrame(sid, data=data).serialize()


def _ping(ack: bool = False) -> bytes:
    f = PingFrame(0, opaque_data=b"12345678")
    if ack:
        f.flags.add("ACK")
    return f.serialize()


# each attack: (frames that open it, one flood frame); a well-behaved client sends few of these
FLOODS = {
    "data-1-byte": (True, lambda sid: _data(1, b"x")),  # data dribble (CVE-2019-9511): 1 MiB = 1M frames
    "data-empty": (True, lambda sid: _data(1, b"")),  # empty frames flood (CVE-2019-9518)
    "data-empty-and-1-byte": (True, lambda sid: _data(1, b"") + _data(1, b"y")),
    "ping": (False, lambda sid: _ping()),  # PING flood (CVE-2019-9512)
    "ping-ack": (False, lambda sid: _ping(ack=True)),  # unsolicited PING ACKs
    "settings": (False, lambda sid: SettingsFrame(0).serialize()),  # SETTINGS flood (each needs an ACK)
    "priority": (True, lambda sid: PriorityFrame(1, depends_on=0, stream_weight=16).serialize()),  # CVE-2019-9513
    "priority-idle-streams": (False, lambda sid: PriorityFrame(sid, depends_on=0, stream_weight=16).serialize()),
    "window-update": (False, lambda sid: WindowUpdateFrame(0, window_increment=1).serialize()),
    # on a stream already closed, each makes h2 answer RST_STREAM(STREAM_CLOSED) (CVE-2019-9514)
    "window-update-closed-stream": ("closed", lambda sid: WindowUpdateFrame(1, window_increment=1).serialize()),
    "unknown-type": (False, lambda sid: b"\x00\x00\x00\xfa\x00\x00\x00\x00\x00"),  # h2 parses and ignores it
}


@pytest.mark.parametrize("name", sorted(FLOODS))
async def test_h2_flood_of_frames_that_carry_little_is_cut_off(name, gateway_factory, raw_upstream):
    """Each of these frames costs hypercorn and h2 5-45 µs of CPU and carries (almost) nothing: as
    fast as possible, they end the connection with GOAWAY(ENHANCE_YOUR_CALM) within the default
    per-connection budget; the upstream never sees the attack's request; a normal client on
    another connection is served all along."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    opens, frame = FLOODS[name]
    h = await _h2(gw.port)
    if opens == "closed":
        await h.send(h.headers_frame(1, _req("/done")))
        assert (await h.response(1))[0] == 200
    elif opens:
        await h.send(h.headers_frame(1, _req("/dribble", method="POST"), end_stream=False))
    normal: list[int] = []

    async def normal_client() -> None:
        for i in range(5):
            normal.append(await normal_h2_get(gw.port, f"/normal{i}"))
            await trio.sleep(0.05)

    sent, sid = 0, 3
    async with trio.open_nursery() as n:
        n.start_soon(normal_client)
        with trio.move_on_after(5):
            while not h.closed and sent < 20000:
                out = b""
                for _ in range(100):
                    out += frame(sid)
                    sid += 2
                await h.send(out)
                sent += 100
                with trio.move_on_after(0.002):
                    await h._read()
        await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == ENHANCE_YOUR_CALM, h.goaway
    assert sent < 20000, "the attacker was never cut off"
    assert not [x for x in up.heads if b"/dribble" in x]
    assert normal == [200] * 5


@pytest.mark.parametrize("trailers", [False, True], ids=["new-stream", "trailers-without-end-stream"])
async def test_h2_empty_header_block_ends_the_connection(trailers, gateway_factory, raw_upstream):
    """CVE-2019-9516 (0-length headers): an empty header block opens no request (h2 refuses it:
    no pseudo-headers; trailers must end their stream), so empty HEADERS frames cannot pile up;
    empty CONTINUATION frames are bounded by the CONTINUATION limit above."""
    up = await raw_upstream()
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    h = await _h2(gw.port)
    if trailers:
        await h.send(h.headers_frame(1, _req("/t", method="POST"), end_stream=False))
    empty = HeadersFrame(1)
    empty.flags.add("END_HEADERS")
    await h.send(empty.serialize())
    await h.until_closed()
    assert h.goaway is not None and h.goaway.error_code == PROTOCOL_ERROR, h.goaway
    assert up.data == b""
    assert await normal_h2_get(gw.port, "/still-up") == 200


async def _h2_upload(port: int, path: str, pieces: list[bytes], pause: float = 0.0) -> tuple[int, bytes]:
    """A well-behaved client (the h2 library) uploading ``pieces``, one DATA frame each (within flow
    control), ``pause`` seconds apart; returns the response status and body."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    status, body, ended = 0, b"", False

    async def pump(wait: bool) -> None:
        nonlocal status, body, ended
        out = conn.data_to_send()
        if out:
            await stream.send_all(out)
        if not wait:
            return
        data = await stream.receive_some(65536)
        assert data, "connection closed"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                pytest.fail(f"GOAWAY {ev.error_code}")
        await pump(False)

    async with stream:
        with trio.fail_after(20):
            conn.send_headers(1, _req(path, method="POST"))
            await pump(False)
            for piece in pieces:
                while conn.local_flow_control_window(1) < len(piece):
                    await pump(True)
                conn.send_data(1, piece)
                await pump(False)
                if pause:
                    await trio.sleep(pause)
            conn.end_stream(1)
            await pump(False)
            while not ended:
                await pump(True)
    return status, body


@pytest.mark.parametrize("kind", ["1MiB-in-16KiB-frames", "1000-small-messages"])
async def test_h2_legitimate_uploads_are_not_cut_off(kind, gateway_factory, upstream_factory):
    """Normal frames pass the budgets: a browser-like upload (16 KiB frames) and a gRPC-like stream of
    small messages at a normal pace (about 500 a second, one DATA frame each)."""
    async def count(req):
        n = 0
        async for chunk in req.body:
            n += len(chunk)
        return {"received": n}

    up = await upstream_factory(count)
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2")}})
    if kind == "1MiB-in-16KiB-frames":
        pieces, pause = [b"u" * 16384] * 64, 0.0
    else:
        pieces, pause = [b"m" * 100] * 1000, 0.002
    status, body = await _h2_upload(gw.port, "/upload", pieces, pause)
    assert status == 200, body
    assert json.loads(body) == {"received": sum(map(len, pieces))}


async def test_h2_window_updates_answering_a_download_are_free(gateway_factory, upstream_factory):
    """A client that acknowledges every DATA frame of a large download (two WINDOW_UPDATEs each, far
    more than the control-frame budget in a second) is not cut off."""
    big = b"d" * (4 << 20)

    async def download(req):
        return Response(200, [("content-type", "application/octet-stream")], big)

    up = await upstream_factory(download)
    gw = await gateway_factory({**route_to(up), "gateway": {"listen": _listen("h2"),
                                                            "limits": {"h2_max_control_frames_per_second": 50}}})
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    got, ended, updates = 0, False, 0
    async with await trio.open_tcp_stream("127.0.0.1", gw.port) as stream:
        conn.send_headers(1, _req("/big"), end_stream=True)
        await stream.send_all(conn.data_to_send())
        with trio.fail_after(20):
            while not ended:
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived) and ev.flow_controlled_length:
                        got += len(ev.data)
                        conn.increment_flow_control_window(ev.flow_controlled_length)  # every frame, both windows
                        conn.increment_flow_control_window(ev.flow_controlled_length, ev.stream_id)
                        updates += 2
                    elif isinstance(ev, h2.events.StreamEnded):
                        ended = True
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        pytest.fail(f"GOAWAY {ev.error_code}")
                out = conn.data_to_send()
                if out:
                    await stream.send_all(out)
    assert got == len(big) and updates > 100
