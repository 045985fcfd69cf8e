"""UpstreamServer handlers may stream the request body themselves (``async for chunk in req.body``)."""

from __future__ import annotations

from triogate import Body, Response
from triogate.upstream import HTTPClient


async def test_handler_that_streams_the_request_body(upstream_factory) -> None:
    async def handler(req):
        chunks = [c async for c in req.body]
        return Response.json({"chunks": len(chunks), "body": b"".join(chunks).decode()})

    up = await upstream_factory(handler)

    async def gen():
        yield b"hello "
        yield b"world"

    http = HTTPClient()
    try:
        for _ in range(2):  # and the connection stays usable
            got = await http.fetch("POST", up.url + "/", body=None, timeout=5)
            assert got.status == 200
            resp = await http.request("POST", up.url + "/", body=Body(gen()), timeout=5)
            try:
                data = __import__("json").loads(await resp.body.read(1 << 16))
            finally:
                await resp.body.aclose()
            assert data["body"] == "hello world"
    finally:
        await http.aclose()
