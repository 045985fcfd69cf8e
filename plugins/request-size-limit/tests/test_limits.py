"""Body limits against real sockets: Content-Length up front, chunked bodies cut off while streaming."""

import json

import trio
import triogate
from triogate.testing import UpstreamServer, raw_request
from triogate_request_size_limit import RequestSizeLimitPlugin

LIMIT = 1000


def cfg(upstream: UpstreamServer, **settings) -> dict:
    return {
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {
            "upload": {"paths": ["/upload"], "upstream": "u",
                       "plugins": {"request-size-limit": {"max_bytes": LIMIT, **settings}}},
            "other": {"paths": ["/other"], "upstream": "u"},
        },
    }


async def start(gateway_factory, config: dict):
    return await gateway_factory(config, plugins={"request-size-limit": RequestSizeLimitPlugin})


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


async def test_within_limit_passes_untouched(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream))
    r = await gw.client.post("/upload", body=b"x" * LIMIT)
    assert r.status == 200 and len(r.json()["body"]) == LIMIT
    assert r.json()["headers"]["content-length"] == [str(LIMIT)]  # a known length stays a known length


async def test_content_length_over_the_limit_is_refused_up_front(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream))
    r = await gw.client.post("/upload", body=b"x" * (LIMIT + 1))
    assert r.status == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == f"request body larger than {LIMIT} bytes"
    assert r.headers["connection"] == "close"
    assert upstream.requests == []
    # the limit is per route
    assert (await gw.client.post("/other", body=b"x" * (LIMIT + 1))).status == 200


async def test_expect_100_continue_is_refused_without_reading_the_body(upstream: UpstreamServer,
                                                                       gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream))
    raw = await raw_request(gw.port, b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
                                     b"Expect: 100-continue\r\n\r\n", timeout=5)
    status, _, body = parse(raw)
    assert status == 413, raw
    assert b"100 Continue" not in raw
    assert json.loads(body)["status"] == 413
    assert upstream.requests == []


async def test_chunked_body_within_limit_streams_through(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream))
    chunks = b"".join(b"%x\r\n%s\r\n" % (100, b"y" * 100) for _ in range(10)) + b"0\r\n\r\n"
    raw = await raw_request(gw.port, b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                     b"Connection: close\r\n\r\n" + chunks, timeout=5)
    status, _, body = parse(raw)
    assert status == 200, raw
    assert json.loads(body)["body"] == "y" * LIMIT


async def test_chunked_body_gets_413_as_soon_as_the_limit_is_crossed(upstream: UpstreamServer,
                                                                     gateway_factory) -> None:
    """The client keeps the upload open after crossing the limit: the 413 must arrive anyway."""
    gw = await start(gateway_factory, cfg(upstream))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    try:
        await stream.send_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        await stream.send_all(b"%x\r\n%s\r\n" % (600, b"a" * 600))
        await trio.sleep(0.05)
        await stream.send_all(b"%x\r\n%s\r\n" % (600, b"b" * 600))  # 1200 > 1000; no terminating chunk
        received = b""
        with trio.fail_after(5):  # would hang until the body timeout if the gateway waited for the end
            while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
                data = await stream.receive_some(65536)
                if not data:
                    break
                received += data
    finally:
        await trio.aclose_forcefully(stream)
    status, headers, body = parse(received)
    assert status == 413, received
    assert headers["connection"] == "close"
    assert json.loads(body)["detail"] == f"request body larger than {LIMIT} bytes"


async def test_plugin_reading_the_body_is_capped_too(upstream: UpstreamServer, gateway_factory) -> None:
    class Reader(triogate.Plugin):
        priority = 800

        @triogate.hookimpl
        async def transform(self, ctx: triogate.Context) -> triogate.Response:
            data = await ctx.request.body.read(10 * LIMIT)  # its own limit is larger
            return triogate.Response.text(f"read {len(data)}")

    config = cfg(upstream)
    config["routes"]["upload"]["plugins"]["reader"] = {}
    gw = await gateway_factory(config, plugins={"request-size-limit": RequestSizeLimitPlugin, "reader": Reader})
    chunked = b"%x\r\n%s\r\n0\r\n\r\n"
    ok = await raw_request(gw.port, b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                    b"Connection: close\r\n\r\n" + chunked % (LIMIT, b"z" * LIMIT))
    assert parse(ok)[0] == 200 and parse(ok)[2] == b"read %d" % LIMIT
    big = await raw_request(gw.port, b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                     b"Connection: close\r\n\r\n" + chunked % (LIMIT + 1, b"z" * (LIMIT + 1)))
    assert parse(big)[0] == 413
    assert upstream.requests == []


async def test_require_content_length(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream, require_content_length=True))
    raw = await raw_request(gw.port, b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                     b"\r\n5\r\nhello\r\n0\r\n\r\n")
    status, _, body = parse(raw)
    assert status == 411 and json.loads(body)["status"] == 411
    assert (await gw.client.post("/upload", body=b"hello")).status == 200
    assert (await gw.client.get("/upload")).status == 200  # no body at all is fine
