"""Class 4 (slow request bodies starve an upstream) and class 9 (tiny chunks amplify work).

Every test attacks a running gateway over real sockets, on every listener and parser
(``front``). Timeouts in the configs are small so the file runs in seconds.
"""

from __future__ import annotations

import json
from typing import Any

import h2.config
import h2.connection
import h2.events
import trio
from triogate.testing import raw_request

from .conftest import OK_RESPONSE, RawConnection, route_to


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def _problem(raw: bytes) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head.lower(), raw[:400]
    return json.loads(body)


async def _read_response(stream: trio.SocketStream, timeout: float) -> bytes:
    """Read until the end of one Content-Length response, or until the peer closes."""
    data = b""
    with trio.move_on_after(timeout):
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    return data
            try:
                chunk = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return data
            if not chunk:
                return data
            data += chunk
    return data


def _body_bytes(conn: RawConnection) -> int:
    """Body bytes the upstream got on a connection (its data after the first head)."""
    return len(conn.data) - len(conn.heads[0]) if conn.heads else 0


# --------------------------------------------------------------------------- class 4: starvation


async def test_trickled_bodies_do_not_starve_the_upstream_pool(front, secure_gateway, raw_upstream):
    """30 clients trickle small bodies while the upstream pool has 4 connections: everyone else gets 200."""
    up = await raw_upstream()
    cfg = route_to(up)
    cfg["upstreams"]["u"].update(max_connections=4, pool_timeout=0.5)
    gw = await secure_gateway(cfg)

    async def trickler(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
        async with stream:
            await stream.send_all(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n" + b"s" * 10)
            task_status.started()
            try:
                for _ in range(99):  # 10 bytes every 100 ms: the body would take 10 s
                    await trio.sleep(0.1)
                    await stream.send_all(b"s" * 10)
            except trio.BrokenResourceError:
                pass  # the gateway gave up on this one

    statuses: list[int] = []

    async def normal(i: int) -> None:
        req = (b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello" if i % 2
               else b"GET /fast HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        statuses.append(_status(await raw_request(gw.port, req, timeout=3)))

    async with trio.open_nursery() as attack:
        for _ in range(30):
            await attack.start(trickler)
        await trio.sleep(0.3)  # every trickled request is in the gateway now
        with trio.fail_after(10):
            async with trio.open_nursery() as n:
                for i in range(12):
                    n.start_soon(normal, i)
        attack.cancel_scope.cancel()
    assert statuses == [200] * 12
    # no trickled request reached the upstream: only the normal ones did
    assert len(up.heads) == 12 and not any(b"/slow" in h for h in up.heads)


def _paced(buffer: int = 1024, rate: int = 0, grace: float = 0.2, whole: float = 30.0) -> dict[str, Any]:
    return {"limits": {"body_buffer_bytes": buffer, "min_body_rate": rate},
            "timeouts": {"body_rate_grace": grace, "request_body": whole, "body": 5.0}}


async def _trickle_until_answered(port: int, head: bytes, first: bytes, piece: bytes, interval: float,
                                  timeout: float) -> tuple[bytes, float]:
    """Send ``head + first``, then ``piece`` every ``interval`` until the gateway answers."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    start = trio.current_time()
    async with stream:
        await stream.send_all(head + first)

        async def pump(scope: trio.CancelScope) -> None:
            try:
                while True:
                    await trio.sleep(interval)
                    await stream.send_all(piece)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async with trio.open_nursery() as n:
            n.start_soon(pump, n.cancel_scope)
            raw = await _read_response(stream, timeout)
            n.cancel_scope.cancel()
    return raw, trio.current_time() - start


async def test_streamed_body_below_the_minimum_rate_is_cut_with_408(front, secure_gateway, raw_upstream):
    """A body larger than the buffer streams; trickled below min_body_rate it gets 408 and the
    upstream never sees the whole request."""
    up = await raw_upstream()
    cfg = route_to(up)
    cfg["gateway"] = _paced(buffer=1024, rate=4000)
    gw = await secure_gateway(cfg)
    raw, elapsed = await _trickle_until_answered(
        gw.port, b"PUT /up HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n", b"a" * 2048, b"a" * 10, 0.1, 5)
    assert _status(raw) == 408, raw[:300]
    doc = _problem(raw)
    assert "min_body_rate" in doc["detail"] and doc["request_id"]
    assert elapsed < 4
    # the body streamed (it is larger than the buffer), but never completely
    assert len(up.heads) == 1 and up.heads[0].startswith(b"PUT /up ")
    assert 2048 <= _body_bytes(up.connections[0]) < 100000


async def test_buffered_body_below_the_minimum_rate_never_reaches_the_upstream(front, secure_gateway, raw_upstream):
    up = await raw_upstream()
    cfg = route_to(up)
    cfg["gateway"] = _paced(buffer=1024, rate=4000)
    gw = await secure_gateway(cfg)
    raw, elapsed = await _trickle_until_answered(
        gw.port, b"POST /small HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n", b"b" * 10, b"b" * 10, 0.1, 5)
    assert _status(raw) == 408, raw[:300]
    assert "min_body_rate" in _problem(raw)["detail"]
    assert elapsed < 4
    assert up.connections == []  # nothing was sent upstream


async def test_whole_body_timeout_bounds_a_steady_trickle(front, secure_gateway, raw_upstream):
    """20 KB/s is a pace the rate check would accept forever; request_body still ends it."""
    up = await raw_upstream()
    cfg = route_to(up)
    cfg["gateway"] = _paced(buffer=1024, rate=0, whole=0.8)
    gw = await secure_gateway(cfg)
    raw, elapsed = await _trickle_until_answered(
        gw.port, b"PUT /big HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n", b"c" * 2048,
        b"c" * 1000, 0.05, 5)
    assert _status(raw) == 408, raw[:300]
    assert "request_body" in _problem(raw)["detail"]
    assert 0.7 < elapsed < 3
    assert len(up.heads) == 1
    assert _body_bytes(up.connections[0]) < 100000000


async def test_body_within_the_buffer_arrives_whole_and_is_retried(front, secure_gateway, raw_upstream):
    """A chunked body sent in pieces, within body_buffer_bytes, goes upstream in one piece with a
    Content-Length, so a failed attempt can be replayed on the other target."""
    bad = await raw_upstream(lambda head, conn: b"NOT HTTP AT ALL\r\n\r\n")
    good = await raw_upstream()
    cfg = {"upstreams": {"u": {"targets": [{"url": bad.url}, {"url": good.url}], "retries": 1}},
           "routes": {"r": {"paths": ["/"], "upstream": "u"}}}
    gw = await secure_gateway(cfg)
    body = b"0123456789" * 300
    for _ in range(2):  # round-robin: one of the two requests tries the bad target first
        stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
        async with stream:
            await stream.send_all(b"PUT /doc HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                                  b"connection: close\r\n\r\n")
            for i in range(0, len(body), 1000):
                await trio.sleep(0.05)
                await stream.send_all(b"%x\r\n%s\r\n" % (1000, body[i:i + 1000]))
            await stream.send_all(b"0\r\n\r\n")
            raw = await _read_response(stream, 5)
        assert _status(raw) == 200, raw[:300]
    assert len(bad.heads) == 1 and len(good.heads) == 2
    for conn in bad.connections + good.connections:  # every attempt: Content-Length framing, the whole body
        for head in conn.heads:
            assert b"content-length: 3000\r\n" in head.lower() and b"transfer-encoding" not in head.lower()
        assert bytes(conn.data) == b"".join(head + body for head in conn.heads)


async def test_connection_cap_closes_idle_connections_then_waits(front, secure_gateway, raw_upstream):
    up = await raw_upstream()
    cfg = route_to(up)
    cfg["gateway"] = {"limits": {"max_connections": 4}}
    gw = await secure_gateway(cfg)
    get = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
    with trio.fail_after(10):
        # four keep-alive connections, idle after one request each
        idle = [await trio.open_tcp_stream("127.0.0.1", gw.port) for _ in range(4)]
        for s in idle:
            await s.send_all(get)
            assert _status(await _read_response(s, 2)) == 200
        # a fifth client is served: the gateway closed an idle connection to make room
        fifth = await trio.open_tcp_stream("127.0.0.1", gw.port)
        await fifth.send_all(get)
        assert _status(await _read_response(fifth, 2)) == 200
        closed = 0
        for s in idle:
            with trio.move_on_after(0.2):
                try:
                    closed += await s.receive_some(1) == b""
                except trio.BrokenResourceError:
                    closed += 1
        assert closed == 1
        for s in idle + [fifth]:
            await s.aclose()

        # four busy connections (a request head half sent): a fifth waits, unserved, until one ends
        busy = [await trio.open_tcp_stream("127.0.0.1", gw.port) for _ in range(4)]
        for s in busy:
            await s.send_all(b"GET / HTTP/1.1\r\n")
        await trio.sleep(0.2)
        waiting = await trio.open_tcp_stream("127.0.0.1", gw.port)  # the kernel's backlog takes it
        await waiting.send_all(get)
        assert await _read_response(waiting, 0.5) == b""
        await busy[0].aclose()
        assert _status(await _read_response(waiting, 3)) == 200
        for s in busy[1:] + [waiting]:
            await s.aclose()


async def test_http2_stream_body_below_the_minimum_rate_gets_408(gateway_factory, raw_upstream):
    """HTTP/2 streams go through the ASGI adapter: the same pacing applies to their DATA frames."""
    up = await raw_upstream()
    cfg = route_to(up)
    cfg["gateway"] = {**_paced(buffer=1024, rate=4000), "listen": [{"address": "127.0.0.1:0", "protocol": "h2"}]}
    gw = await gateway_factory(cfg)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":path", "/h2"), (":scheme", "http"), (":authority", "x"),
                          ("content-length", "500")])
    conn.send_data(1, b"d" * 10)
    status, body, start = None, b"", trio.current_time()
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(conn.data_to_send())
        with trio.fail_after(5):
            while True:  # the client sends nothing more: its stream stalls at 10 of 500 bytes
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                events = conn.receive_data(data)
                for ev in events:
                    if isinstance(ev, h2.events.ResponseReceived):
                        status = dict(ev.headers)[":status"]
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                await stream.send_all(conn.data_to_send())
                if any(isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) for ev in events):
                    break
    assert status == "408"
    assert "min_body_rate" in json.loads(body)["detail"]
    assert trio.current_time() - start < 3
    assert up.connections == []


# --------------------------------------------------------------------------- class 9: tiny chunks


def _dechunk(data: bytes) -> tuple[bytes, int]:
    """Decode a chunked body; returns (body, number of chunks)."""
    out, pos, count = [], 0, 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        pos = end + 2
        if size == 0:
            return b"".join(out), count
        out.append(data[pos:pos + size])
        count += 1
        pos += size + 2


async def test_one_byte_chunks_are_coalesced_before_the_upstream(front, secure_gateway, raw_upstream):
    """1 MiB sent as 1-byte chunks reaches the upstream intact in a few large chunks, not 2**20 writes."""
    up = await raw_upstream(lambda head, conn: OK_RESPONSE if head.startswith(b"POST ") else None)
    gw = await secure_gateway(route_to(up))
    body = bytes(range(256)) * 4096  # 1 MiB
    wire = b"".join(b"1\r\n%c\r\n" % b for b in body)
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        with trio.fail_after(12):
            await stream.send_all(b"POST /tiny HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                                  b"connection: close\r\n\r\n")
            for i in range(0, len(wire), 65536):
                await stream.send_all(wire[i:i + 65536])
            await stream.send_all(b"0\r\n\r\n")
            raw = await _read_response(stream, 10)
    assert _status(raw) == 200, raw[:300]
    conn = up.connections[0]
    head = conn.heads[0]
    assert b"transfer-encoding: chunked" in head.lower()
    received, chunks = _dechunk(bytes(conn.data[len(head):]))
    assert received == body
    # one upstream chunk per client read (64 KiB of wire each, ~11k client chunks), not one per byte
    assert chunks <= 256, chunks
