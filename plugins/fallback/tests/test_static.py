"""A static answer when the upstream call fails."""

from __future__ import annotations

from triogate.testing import free_port

STATIC = {"static": {"status": 200, "headers": {"content-type": "application/json", "cache-control": "no-store"},
                     "body": '{"items": [], "degraded": true}'}}


async def test_static_answer_with_headers_and_body(upstream_factory, start, backup, spy, answering) -> None:
    primary = await upstream_factory(answering(502, b"bad"))
    gw = await start(primary.url, STATIC)
    r = await gw.client.get("/api/items")
    assert r.status == 200 and r.json() == {"items": [], "degraded": True}
    assert r.headers["content-type"] == "application/json" and r.headers["cache-control"] == "no-store"
    assert r.headers["x-fallback"] == "static" and r.headers["content-length"] == str(len(r.content))
    assert r.headers["x-request-id"]
    assert backup.requests == []
    assert spy.seen[-1]["fallback"] == "static"
    assert spy.seen[-1]["fallback_from"] == {"upstream": "primary", "status": 502, "reason": "status"}


async def test_static_for_a_dead_upstream(start) -> None:
    gw = await start(f"http://127.0.0.1:{free_port()}", {"static": {"status": 503, "body": "try later"}},
                     upstream={"retries": 0})
    r = await gw.client.get("/api/x")
    assert r.status == 503 and r.content == b"try later" and r.headers["x-fallback"] == "static"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


async def test_static_after_a_streamed_body(upstream_factory, start, answering) -> None:
    primary = await upstream_factory(answering(504, b"late"))
    gw = await start(primary.url, {"static": {"status": 503, "body": "try later"}},
                     gateway={"limits": {"body_buffer_bytes": 16}})
    r = await gw.client.post("/api/x", body=b"y" * (512 * 1024))  # nothing to replay: a static answer still applies
    assert r.status == 503 and r.content == b"try later" and r.headers["x-fallback"] == "static"


async def test_static_leaves_successes_alone(upstream_factory, start, answering) -> None:
    primary = await upstream_factory(answering(201, b"made"))
    gw = await start(primary.url, STATIC)
    r = await gw.client.post("/api/x", body=b"{}")
    assert r.status == 201 and r.content == b"made" and "x-fallback" not in r.headers
