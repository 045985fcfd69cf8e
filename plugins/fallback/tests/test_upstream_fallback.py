"""A fallback upstream answers when the primary's upstream call fails."""

from __future__ import annotations

import trio
import triogate
from triogate.testing import UpstreamServer, free_port
from triogate_fallback import FallbackPlugin

FB = {"upstream": "backup"}


async def test_primary_503_answered_by_the_fallback_upstream(upstream_factory, start, backup, spy, answering) -> None:
    primary = await upstream_factory(answering(503, b"down"))
    gw = await start(primary.url, FB)
    r = await gw.client.get("/api/items?x=1", headers={"x-client": "c"})
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    echoed = r.json()
    assert echoed["path"] == "/items" and echoed["query"] == "x=1"  # the route's rewrite applies
    assert echoed["headers"]["x-client"] == ["c"] and "x-forwarded-for" in echoed["headers"]
    assert len(primary.requests) == 1 and len(backup.requests) == 1
    assert spy.seen[-1]["fallback"] == "upstream:backup"
    assert spy.seen[-1]["fallback_from"] == {"upstream": "primary", "status": 503, "reason": "status"}
    assert spy.seen[-1]["upstream"] == "backup"  # the access log names the upstream that served


async def test_primary_down_connect_failure(start, backup, spy) -> None:
    gw = await start(f"http://127.0.0.1:{free_port()}", FB, upstream={"retries": 0})
    r = await gw.client.get("/api/a")
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    assert spy.seen[-1]["fallback_from"] == {"upstream": "primary", "status": 502, "reason": "error"}


async def test_primary_timeout(upstream_factory, start, backup, spy) -> None:
    async def slow(req: triogate.Request) -> triogate.Response:
        await trio.sleep(5)
        return triogate.Response(200, [("content-length", "0")])

    primary = await upstream_factory(slow)
    gw = await start(primary.url, FB, upstream={"read_timeout": 0.05, "retries": 0})
    with trio.fail_after(4):
        r = await gw.client.get("/api/slow")
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    assert spy.seen[-1]["fallback_from"] == {"upstream": "primary", "status": 504, "reason": "timeout"}


async def test_open_circuit(upstream_factory, start, backup, spy, answering) -> None:
    primary = await upstream_factory(answering(502, b"bad"))
    gw = await start(primary.url, FB, upstream={"retries": 0, "circuit_breaker": {"failures": 1, "open_seconds": 60}})
    r = await gw.client.get("/api/a")  # a real 502 opens the circuit
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    r = await gw.client.get("/api/b")  # the gateway's own 503: no healthy target, the primary is not called
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    assert len(primary.requests) == 1 and len(backup.requests) == 2
    assert spy.seen[-1]["fallback_from"] == {"upstream": "primary", "status": 503, "reason": "unavailable"}


async def test_fallback_to_the_failing_upstream_itself_is_skipped(upstream_factory, gateway_factory, spy,
                                                                  answering) -> None:
    primary = await upstream_factory(answering(503, b"down"))
    cfg = {"upstreams": {"primary": {"targets": [{"url": primary.url}]}},
           "routes": {"api": {"paths": ["/api"], "upstream": "primary",
                              "plugins": {"fallback": {"upstream": "primary"}, "spy": {}}}}}
    gw = await gateway_factory(cfg, plugins={"fallback": FallbackPlugin, "spy": spy})
    r = await gw.client.get("/api/x")
    assert r.status == 503 and r.content == b"down" and "x-fallback" not in r.headers
    assert len(primary.requests) == 1 and spy.seen[-1]["fallback"].startswith("skipped:")


async def test_other_statuses_stay(upstream_factory, start, backup, spy, answering) -> None:
    primary = await upstream_factory(answering(404, b"nope"))
    gw = await start(primary.url, FB)
    r = await gw.client.get("/api/missing")
    assert r.status == 404 and r.content == b"nope" and "x-fallback" not in r.headers
    primary.handler = answering(500, b"bug")
    r = await gw.client.get("/api/bug")
    assert r.status == 500 and "x-fallback" not in r.headers
    assert backup.requests == [] and "fallback" not in spy.seen[-1]


async def test_configured_statuses_and_header(upstream_factory, start, backup, answering) -> None:
    primary = await upstream_factory(answering(500, b"bug"))
    gw = await start(primary.url, {"upstream": "backup", "statuses": [500], "header": "x-served-by-fallback"})
    r = await gw.client.get("/api/bug")
    assert r.status == 200 and r.headers["x-served-by-fallback"] == "upstream:backup"
    primary.handler = answering(503)
    r = await gw.client.get("/api/x")
    assert r.status == 503 and len(backup.requests) == 1


async def test_small_post_body_is_replayed(upstream_factory, start, backup, answering) -> None:
    primary = await upstream_factory(answering(503))
    gw = await start(primary.url, FB)
    payload = b'{"order": 42, "items": ["a", "b"]}'
    r = await gw.client.post("/api/orders", body=payload, headers={"content-type": "application/json"})
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    assert r.json()["method"] == "POST" and r.json()["body"] == payload.decode()
    assert primary.requests[0].body.data == payload and backup.requests[0].body.data == payload


async def test_streamed_body_is_not_replayed(upstream_factory, start, backup, spy, answering) -> None:
    primary = await upstream_factory(answering(503, b"down"))
    gw = await start(primary.url, FB, gateway={"limits": {"body_buffer_bytes": 16}})

    big = b"x" * (512 * 1024)  # past what one read brings: the body streams after its first 16 bytes
    r = await gw.client.post("/api/upload", body=big)
    assert r.status == 503 and r.content == b"down" and "x-fallback" not in r.headers
    assert backup.requests == [] and primary.requests[0].body.data == big
    assert spy.seen[-1]["fallback"] == "skipped: request body streamed, cannot be replayed"


async def test_fallback_upstream_down(upstream_factory, gateway_factory, spy, answering) -> None:
    primary = await upstream_factory(answering(503, b"down"))
    cfg = {
        "upstreams": {"primary": {"targets": [{"url": primary.url}]},
                      "backup": {"targets": [{"url": f"http://127.0.0.1:{free_port()}"}], "retries": 0}},
        "routes": {"api": {"paths": ["/api"], "upstream": "primary",
                           "plugins": {"fallback": FB, "spy": {}}}},
    }
    gw = await gateway_factory(cfg, plugins={"fallback": FallbackPlugin, "spy": spy})
    r = await gw.client.get("/api/x")
    assert r.status == 502 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-fallback"] == "upstream:backup"
    assert r.json()["request_id"] == r.headers["x-request-id"]
    last = spy.seen[-1]
    assert last["fallback"] == "upstream:backup failed" and last["error"].startswith("fallback upstream backup failed")
    assert last["fallback_from"] == {"upstream": "primary", "status": 503, "reason": "status"}


async def test_fallback_upstream_answering_an_error_passes_it_on(upstream_factory, gateway_factory, spy, answering) -> None:
    primary = await upstream_factory(answering(503, b"down"))
    second: UpstreamServer = await upstream_factory(answering(503, b"also down"))
    cfg = {
        "upstreams": {"primary": {"targets": [{"url": primary.url}]}, "backup": {"targets": [{"url": second.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "primary", "plugins": {"fallback": FB, "spy": {}}}},
    }
    gw = await gateway_factory(cfg, plugins={"fallback": FallbackPlugin, "spy": spy})
    r = await gw.client.get("/api/x")
    assert r.status == 503 and r.content == b"also down" and r.headers["x-fallback"] == "upstream:backup"
    assert len(second.requests) == 1  # no second round: the fallback's answer is final
