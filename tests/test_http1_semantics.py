"""HTTP/1.1 message semantics through the proxy: Expect: 100-continue, HEAD, 204/304,
chunked both ways, HTTP/1.0 clients, keep-alive."""

from __future__ import annotations

import json

import trio

from triogate import Response
from triogate.testing import raw_request
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends


def config(url: str, **route: object) -> dict:
    return {
        "upstreams": {"u": {"targets": [{"url": url}]}},
        "routes": {"r": {"paths": ["/api"], "upstream": "u", **route}},
    }


async def receive_until(stream: trio.SocketStream, marker: bytes, timeout: float = 3.0) -> bytes:
    out = b""
    with trio.move_on_after(timeout):
        while marker not in out:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            out += chunk
    return out


async def test_expect_100_continue_is_sent_only_when_the_body_is_read(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"POST /api/x HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n")
        interim = await receive_until(stream, b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        await stream.send_all(b"hello")
        final = await receive_until(stream, b'"body":"hello"')
    assert final.startswith(b"HTTP/1.1 200 "), final
    # the upstream never sees the expectation: the gateway handled it
    assert "expect" not in upstream.requests[0].headers


async def test_expect_100_continue_short_circuit_answers_without_reading(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"POST /nowhere HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                              b"content-length: 100000000\r\n\r\n")
        raw = await receive_until(stream, b"}")
        rest = await receive_until(stream, b"never", timeout=2)
    assert raw.startswith(b"HTTP/1.1 404 "), raw
    assert b"100 Continue" not in raw
    assert b"connection: close" in raw.lower()  # the unread body makes the connection unusable
    assert rest == b""  # closed
    assert upstream.requests == []


async def test_head_response_has_headers_but_no_body(upstream_factory, gateway_factory):
    async def handler(req):
        payload = b"x" * 1234
        return Response(200, [("content-type", "text/plain"), ("content-length", str(len(payload)))], payload)

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up.url))
    raw = await raw_request(gw.port, b"HEAD /api/a HTTP/1.1\r\nhost: x\r\n\r\nGET /api/b HTTP/1.1\r\nhost: x\r\n"
                            b"connection: close\r\n\r\n", timeout=3)
    first, _, second = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    assert b"content-length: 1234" in first.lower()
    assert second.startswith(b"HTTP/1.1 200"), "HEAD response must carry no body bytes"
    assert [r.method for r in up.requests] == ["HEAD", "GET"]


async def test_204_and_304_have_no_body_and_keep_the_connection(upstream_factory, gateway_factory):
    up = await upstream_factory()

    @up.route("GET", "/none")
    async def none(req):
        return Response(204, [("x-a", "1")])

    @up.route("GET", "/same")
    async def same(req):
        return Response(304, [("etag", '"v1"')])

    gw = await gateway_factory(config(up.url, strip_prefix="/api"))
    raw = await raw_request(gw.port, b"GET /api/none HTTP/1.1\r\nhost: x\r\n\r\n"
                            b"GET /api/same HTTP/1.1\r\nhost: x\r\nif-none-match: \"v1\"\r\n\r\n"
                            b"GET /api/end HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", timeout=3)
    parts = raw.split(b"\r\n\r\n")
    assert parts[0].startswith(b"HTTP/1.1 204")
    assert b"content-length" not in parts[0].lower() and b"transfer-encoding" not in parts[0].lower()
    assert parts[1].startswith(b"HTTP/1.1 304")
    assert b'etag: "v1"' in parts[1]
    assert parts[2].startswith(b"HTTP/1.1 200")
    assert up.connections == 1  # upstream connection reused across all three


async def test_chunked_upload_and_chunked_download(upstream_factory, gateway_factory):
    got: list[tuple[str | None, str | None, bytes]] = []

    async def parts():
        for i in range(5):
            yield b"part%d;" % i
            await trio.sleep(0.01)

    async def handler(req):
        body = await req.body.read(1 << 20)
        got.append((req.headers.get("transfer-encoding"), req.headers.get("content-length"), body))
        return Response(200, [("content-type", "text/plain")], parts())

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up.url))
    raw = await raw_request(gw.port, b"POST /api/up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                            b"connection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", timeout=3)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\n\r\n")
    decoded = b"".join(line for line in body.split(b"\r\n") if line.startswith(b"part"))
    assert decoded == b"part0;part1;part2;part3;part4;"
    te, cl, data = got[0]
    assert data == b"abcdefg"
    assert te == "chunked" or cl == "7"  # re-framed by the gateway either way


async def test_http10_client_gets_a_close_delimited_stream(upstream_factory, gateway_factory):
    async def parts():
        yield b"one,"
        yield b"two"

    async def handler(req):
        return Response(200, [("content-type", "text/plain")], parts())

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up.url))
    raw = await raw_request(gw.port, b"GET /api/x HTTP/1.0\r\n\r\n", timeout=3)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"one,two"
    assert up.requests[0].http_version == "1.1"  # the gateway speaks 1.1 upstream


async def test_http10_keep_alive_is_not_assumed(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    raw = await raw_request(gw.port, b"GET /api/x HTTP/1.0\r\nhost: x\r\n\r\nGET /api/y HTTP/1.0\r\nhost: x\r\n\r\n",
                            timeout=3)
    assert raw.count(b"HTTP/1.1 200") == 1
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["path"] == "/api/x"


async def test_keep_alive_serves_many_requests_on_one_connection(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    for i in range(20):
        r = await gw.client.get(f"/api/{i}")
        assert r.status == 200
        assert r.json()["path"] == f"/api/{i}"
    assert upstream.connections == 1
    pool = gw.client.http.pool(gw.url)
    assert pool.open_connections == 1


async def test_post_with_unread_body_on_short_circuit_closes_connection(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, methods=["GET"]))
    raw = await raw_request(gw.port, b"POST /api/x HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhelloGET /api/y"
                            b" HTTP/1.1\r\nhost: x\r\n\r\n", timeout=3)
    assert raw.startswith(b"HTTP/1.1 405")
    assert upstream.requests == []


async def test_header_injection_by_a_plugin_becomes_a_500_not_a_split_response(upstream, gateway_factory):
    """A plugin setting a header value with CR/LF never reaches the wire; the client gets a problem."""
    import types

    import triogate
    from triogate.testing import raw_request

    hooks = types.ModuleType("evil_hooks")

    @triogate.hookimpl
    async def post_response(ctx, response):
        response.headers.set("x-evil", "a\r\nset-cookie: owned=1")

    hooks.post_response = post_response
    gw = await gateway_factory({"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
                                "routes": {"r": {"paths": ["/"], "upstream": "u"}}}, hooks=[hooks])
    raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", timeout=3)
    assert raw.startswith(b"HTTP/1.1 500"), raw[:200]
    assert b"set-cookie" not in raw.lower()
    assert b"application/problem+json" in raw
