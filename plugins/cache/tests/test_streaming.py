"""Bodies stream: uncacheable and oversized responses are never buffered; the memory store is bounded."""

from __future__ import annotations

import pytest
import trio
from triogate import Body, Response, UpstreamError
from triogate_cache import Cache

CHUNK = b"x" * 65536


def gated_stream(gate: trio.Event, cc: str, chunks: int = 16):
    """Sends one chunk, then waits for ``gate`` before the rest (chunked, no Content-Length)."""

    async def handler(req):
        async def body():
            yield CHUNK
            await gate.wait()
            for _ in range(chunks - 1):
                yield CHUNK

        return Response(200, [("cache-control", cc)], Body(body()))

    return handler


async def first_chunk_before_the_rest(gw, path: str, gate: trio.Event, chunks: int = 16) -> int:
    """Read the first chunk while the upstream still holds the rest back: proves nothing buffers it."""
    with trio.fail_after(5):
        resp = await gw.client.stream("GET", path)
        try:
            it = resp.body.__aiter__()
            first = await it.__anext__()
            assert first and not gate.is_set()
            gate.set()
            total = len(first)
            async for chunk in it:
                total += len(chunk)
        finally:
            await resp.body.aclose()
    assert total == len(CHUNK) * chunks
    return resp


async def test_uncacheable_body_streams(upstream_factory, cached, status_of, calls) -> None:
    gate = trio.Event()
    up = await upstream_factory(gated_stream(gate, "no-store"))
    gw = await cached(up)
    resp = await first_chunk_before_the_rest(gw, "/big", gate)
    assert "detail=no-store" in status_of(resp)


async def test_oversized_chunked_body_streams_and_is_not_stored(upstream_factory, cached, status_of,
                                                                calls) -> None:
    gate = trio.Event()
    up = await upstream_factory(gated_stream(gate, "max-age=60"))
    gw = await cached(up, cache={"max_object_size": 200_000})
    first = await first_chunk_before_the_rest(gw, "/big", gate)
    assert "stored" not in status_of(first)  # length unknown up front: "stored" is never promised
    r = await gw.client.get("/big")
    assert len(r.content) == len(CHUNK) * 16 and "fwd=uri-miss" in status_of(r)
    assert calls(up, "/big") == 2


async def test_cacheable_chunked_body_streams_and_is_stored(upstream_factory, cached, status_of) -> None:
    gate = trio.Event()
    up = await upstream_factory(gated_stream(gate, "max-age=60", chunks=3))
    gw = await cached(up)
    first = await first_chunk_before_the_rest(gw, "/s", gate, chunks=3)
    assert status_of(first) == "triogate; fwd=uri-miss; fwd-status=200"
    r = await gw.client.get("/s")
    assert "hit" in status_of(r) and len(r.content) == 3 * len(CHUNK)
    assert r.headers["content-length"] == str(3 * len(CHUNK))


async def test_known_oversized_length_is_not_copied(upstream_factory, cached, status_of) -> None:
    async def handler(req):
        return Response(200, [("cache-control", "max-age=60")], b"y" * 5000)

    gw = await cached(await upstream_factory(handler), cache={"max_object_size": 4096})
    r = await gw.client.get("/k")
    assert len(r.content) == 5000 and "detail=too-large" in status_of(r) and "stored" not in status_of(r)


async def test_truncated_upstream_body_is_not_stored(upstream_factory, cached, status_of, calls) -> None:
    async def handler(req):
        async def body():
            yield b"partial"
            raise ConnectionError("origin died")

        return Response(200, [("cache-control", "max-age=60"), ("content-length", "100")], Body(body(), 100))

    up = await upstream_factory(handler)
    gw = await cached(up)
    with pytest.raises(UpstreamError):  # the gateway aborts the client connection mid-body
        await gw.client.get("/t", timeout=5)
    plugin = next(p for p in gw.gateway.pipeline.services.plugins if isinstance(p, Cache))
    assert len(plugin.store) == 0
    assert calls(up, "/t") == 1


async def test_memory_store_is_bounded_lru(upstream_factory, cached, status_of) -> None:
    async def handler(req):
        return Response(200, [("cache-control", "max-age=60")], b"z" * 40_000)

    gw = await cached(await upstream_factory(handler), cache={"memory_size": 100_000, "max_object_size": 50_000})
    for p in ("/1", "/2"):
        await gw.client.get(p)
    assert "hit" in status_of(await gw.client.get("/1"))  # /1 is now the most recently used
    await gw.client.get("/3")  # evicts /2
    plugin = next(p for p in gw.gateway.pipeline.services.plugins if isinstance(p, Cache))
    assert plugin.store.bytes <= 100_000 and len(plugin.store) == 2
    assert "hit" in status_of(await gw.client.get("/1"))
    assert "fwd=uri-miss" in status_of(await gw.client.get("/2"))
