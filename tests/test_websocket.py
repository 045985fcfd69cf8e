"""Upgrade (WebSocket) requests are proxied as a byte tunnel after the upstream's 101."""

from __future__ import annotations

import base64
import hashlib

import trio

from triogate import Response
from triogate.testing import echo_handler
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends

KEY = base64.b64encode(b"0123456789abcdef").decode()
ACCEPT = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


async def ws_upstream(req):
    if req.headers.get("upgrade", "").lower() == "websocket":
        return Response(101, [("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-accept", ACCEPT)])
    return await echo_handler(req)


def config(url: str) -> dict:
    return {"upstreams": {"u": {"targets": [{"url": url}]}}, "routes": {"ws": {"paths": ["/ws"], "upstream": "u"}}}


UPGRADE = (b"GET /ws/chat HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: keep-alive, Upgrade\r\n"
           b"sec-websocket-key: " + KEY.encode() + b"\r\nsec-websocket-version: 13\r\n\r\n")


async def read_head(stream: trio.SocketStream) -> tuple[bytes, bytes]:
    data = b""
    with trio.fail_after(3):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, data
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


async def receive_exactly(stream: trio.SocketStream, n: int, already: bytes = b"") -> bytes:
    data = already
    with trio.fail_after(3):
        while len(data) < n:
            chunk = await stream.receive_some(65536)
            assert chunk, data
            data += chunk
    return data


async def test_websocket_upgrade_is_tunnelled_both_ways(upstream_factory, gateway_factory):
    up = await upstream_factory(ws_upstream)
    gw = await gateway_factory(config(up.url))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(UPGRADE)
        head, rest = await read_head(stream)
        assert head.startswith(b"HTTP/1.1 101"), head
        lower = head.lower()
        assert b"upgrade: websocket" in lower
        assert b"sec-websocket-accept: " + ACCEPT.lower().encode() in lower
        # arbitrary bytes (frames, as far as the gateway is concerned) flow both ways
        for size in (1, 1000, 200_000):
            payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            await stream.send_all(payload)
            assert await receive_exactly(stream, len(payload), rest) == payload
            rest = b""
    req = up.requests[0]
    assert req.headers.get("upgrade") == "websocket"
    assert req.headers.get("connection").lower() == "upgrade"
    assert req.headers.get("sec-websocket-key") == KEY
    assert "keep-alive" not in req.headers.get("connection").lower()


async def test_bytes_sent_right_after_the_upgrade_request_are_not_lost(upstream_factory, gateway_factory):
    up = await upstream_factory(ws_upstream)
    gw = await gateway_factory(config(up.url))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(UPGRADE + b"early-bytes")
        head, rest = await read_head(stream)
        assert head.startswith(b"HTTP/1.1 101")
        assert await receive_exactly(stream, len(b"early-bytes"), rest) == b"early-bytes"


async def test_upstream_refusing_the_upgrade_is_a_normal_response(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    raw = b""
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(UPGRADE.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))
        with trio.move_on_after(3):
            while chunk := await stream.receive_some(65536):
                raw += chunk
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]


async def test_tunnel_closes_when_the_client_goes_away(nursery, gateway_factory):
    upstream_closed = trio.Event()

    async def raw_ws(stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
            try:
                while chunk := await stream.receive_some(65536):
                    await stream.send_all(chunk)
            except trio.BrokenResourceError:
                pass
        upstream_closed.set()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, raw_ws, listeners)
    gw = await gateway_factory(config(f"http://127.0.0.1:{port}"))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    await stream.send_all(UPGRADE)
    await read_head(stream)
    await stream.send_all(b"ping")
    assert await receive_exactly(stream, 4) == b"ping"
    await stream.aclose()
    with trio.fail_after(3):
        await upstream_closed.wait()  # the gateway closed its upstream side of the tunnel


async def test_idle_tunnel_is_closed_after_tunnel_idle(upstream_factory, gateway_factory):
    up = await upstream_factory(ws_upstream)
    cfg = config(up.url)
    cfg["gateway"] = {"timeouts": {"tunnel_idle": 0.3}}
    gw = await gateway_factory(cfg)
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(UPGRADE)
        head, rest = await read_head(stream)
        assert head.startswith(b"HTTP/1.1 101"), head
        for _ in range(3):  # traffic keeps it open past the idle timeout
            await trio.sleep(0.15)
            await stream.send_all(b"ping")
            assert await receive_exactly(stream, 4, rest) == b"ping"
            rest = b""
        start = trio.current_time()
        with trio.fail_after(3):
            assert await stream.receive_some(100) == b""  # then silence: the gateway closes it
        assert trio.current_time() - start >= 0.25
