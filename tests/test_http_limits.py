"""Native listener limits and timeouts, over real sockets.

Every limit answers with its status (414, 431, 413, 408) as problem+json and the
upstream never sees the request; every timeout frees the connection.
"""

from __future__ import annotations

import json

import trio

from triogate import Response
from triogate.testing import UpstreamServer, raw_request
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends


def config(upstream: UpstreamServer, **gateway: object) -> dict:
    return {
        "gateway": gateway,
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw[9:12])


def problem_of(raw: bytes) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), head
    doc = json.loads(body)
    assert doc["request_id"]
    return doc


async def read_response(stream: trio.SocketStream, timeout: float = 5.0) -> bytes:
    """Read until the peer closes (or the timeout)."""
    out = bytearray()
    with trio.move_on_after(timeout):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            out += chunk
    return bytes(out)


async def test_request_target_too_long_is_414(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, limits={"max_request_line": 1000}))
    ok = await raw_request(gw.port, b"GET /" + b"a" * 900 + b" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert status_of(ok) == 200
    raw = await raw_request(gw.port, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    assert status_of(raw) == 414
    assert problem_of(raw)["status"] == 414
    assert len(upstream.requests) == 1


async def test_too_many_header_fields_is_431(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, limits={"max_headers": 10}))
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(20))
    raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
    assert status_of(raw) == 431
    assert upstream.requests == []


async def test_header_block_too_large_is_431(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, limits={"max_header_bytes": 4096}))
    raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 8000 + b"\r\n\r\n")
    assert status_of(raw) == 431
    # also when the head arrives in pieces and never ends
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        for _ in range(10):
            try:
                await stream.send_all(b"x-pad: " + b"b" * 1000 + b"\r\n")
            except trio.BrokenResourceError:
                break
        raw = await read_response(stream)
    assert status_of(raw) == 431
    assert upstream.requests == []


async def test_body_too_large_by_content_length_is_413_without_reading_it(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, limits={"max_body_bytes": 1000}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        # the body is never sent: the answer must come from the head alone
        await stream.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n")
        raw = await read_response(stream)
    assert status_of(raw) == 413
    assert b"connection: close" in raw.lower()
    assert upstream.requests == []


async def test_chunked_body_over_the_limit_is_413_while_streaming(upstream_factory, gateway_factory):
    completed: list[bytes] = []

    async def handler(req):
        completed.append(await req.body.read(1 << 20))
        return {"ok": True}

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up, limits={"max_body_bytes": 1000}))
    chunk = b"190\r\n" + b"z" * 400 + b"\r\n"  # 400 bytes per chunk
    ok = await raw_request(gw.port, b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                           + chunk * 2 + b"0\r\n\r\n")
    assert status_of(ok) == 200
    assert completed == [b"z" * 800]
    raw = await raw_request(gw.port, b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                            + chunk * 5 + b"0\r\n\r\n")
    assert status_of(raw) == 413
    assert b"connection: close" in raw.lower()
    assert completed == [b"z" * 800]  # the upstream never got a complete oversized request


async def test_header_read_timeout_answers_408_and_closes(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, timeouts={"header": 0.3}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        start = trio.current_time()
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n")  # never finished (slowloris)
        raw = await read_response(stream)
        elapsed = trio.current_time() - start
    assert status_of(raw) == 408
    assert 0.25 < elapsed < 2.0
    assert upstream.requests == []


async def test_slowloris_trickle_does_not_extend_the_header_deadline(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, timeouts={"header": 0.5}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        start = trio.current_time()
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        closed_at = None
        for _ in range(30):
            await trio.sleep(0.1)
            try:
                await stream.send_all(b"x: y\r\n")
            except trio.BrokenResourceError:
                closed_at = trio.current_time()
                break
        raw = await read_response(stream, timeout=2)
    assert status_of(raw) == 408 if raw else closed_at is not None
    assert (closed_at or trio.current_time()) - start < 2.0


async def test_idle_keep_alive_connection_is_closed(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream, timeouts={"idle": 0.3}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        start = trio.current_time()
        raw = await read_response(stream)  # the response, then a quiet close after the idle timeout
        elapsed = trio.current_time() - start
    assert status_of(raw) == 200
    assert raw.count(b"HTTP/1.1") == 1
    assert 0.25 < elapsed < 2.0
    # a connection that never sends anything is closed quietly too
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        start = trio.current_time()
        assert await read_response(stream) == b""
        assert trio.current_time() - start < 2.0


async def test_body_timeout_answers_408(upstream_factory, gateway_factory):
    completed: list[bytes] = []

    async def handler(req):
        completed.append(await req.body.read(1 << 20))
        return {"ok": True}

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up, timeouts={"body": 0.3}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n" + b"a" * 10)
        start = trio.current_time()
        raw = await read_response(stream)
        elapsed = trio.current_time() - start
    assert status_of(raw) == 408
    assert elapsed < 2.0
    assert completed == []


async def test_slow_reader_is_cut_off_by_the_send_timeout(upstream_factory, gateway_factory):
    closed = trio.Event()

    async def endless():
        try:
            while True:
                yield b"x" * 65536
                await trio.sleep(0)
        finally:
            closed.set()

    async def handler(req):
        return Response(200, [("content-type", "application/octet-stream")], endless())

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up, timeouts={"send": 0.3}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        # never read: the gateway's writes stall once the socket buffers fill
        with trio.fail_after(5):
            await closed.wait()  # the gateway gave up and closed the upstream side too
    assert len(up.requests) == 1


async def test_graceful_shutdown_drains_in_flight_requests(upstream_factory, gateway_factory, nursery):
    async def slow(req):
        await trio.sleep(0.5)
        return {"slow": True}

    up = await upstream_factory(slow)
    gw = await gateway_factory(config(up, timeouts={"drain": 5}))
    port = gw.port
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    await trio.sleep(0.1)
    idle = await trio.open_tcp_stream("127.0.0.1", port)  # an idle keep-alive connection
    await trio.sleep(0.05)
    stopped = trio.Event()

    async def stop():
        await gw.stop()
        stopped.set()

    nursery.start_soon(stop)
    async with stream, idle:
        raw = await read_response(stream)
        assert status_of(raw) == 200
        assert b"connection: close" in raw.lower()
        assert b'"slow":true' in raw
        assert await read_response(idle, timeout=2) == b""  # idle one closed without an answer
    with trio.fail_after(3):
        await stopped.wait()
    # no longer accepting
    try:
        s = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        pass
    else:
        async with s:
            await s.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert await read_response(s, timeout=1) == b""


async def test_shutdown_deadline_cuts_requests_that_take_too_long(upstream_factory, gateway_factory, nursery):
    async def stuck(req):
        await trio.sleep(30)
        return {}

    up = await upstream_factory(stuck)
    gw = await gateway_factory(config(up, timeouts={"drain": 0.3}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    await trio.sleep(0.1)
    start = trio.current_time()
    with trio.fail_after(3):
        await gw.stop()
    assert trio.current_time() - start < 2.0
    async with stream:
        await read_response(stream, timeout=1)
