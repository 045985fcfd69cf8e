"""Revalidation with ETag / Last-Modified; a 304 freshens stored headers; client conditionals from cache."""

from __future__ import annotations

import time

from triogate import Response
from triogate_cache.directives import format_http_date

LM = format_http_date(time.time() - 86400)


def validating_origin(state: dict):
    """ETag "e<version>"; answers 304 to a matching If-None-Match or a current If-Modified-Since."""

    async def handler(req):
        state["seen"].append({k: req.headers.get(k) for k in ("if-none-match", "if-modified-since")})
        etag = f'"e{state["version"]}"'
        headers = [("cache-control", state.get("cc", "max-age=10")), ("x-version", str(state["version"])),
                   ("x-served", str(len(state["seen"])))]
        if state.get("etag", True):
            headers.append(("etag", etag))
        if state.get("lm"):
            headers.append(("last-modified", LM))
        if (state.get("etag", True) and req.headers.get("if-none-match") == etag) or (
                not state.get("etag", True) and req.headers.get("if-modified-since") == LM):
            return Response(304, headers)
        return Response(200, headers, f"body{state['version']}".encode())

    return handler


async def test_etag_revalidation_304_freshens_headers(upstream_factory, cached, status_of, mock_clock) -> None:
    state = {"version": 1, "seen": []}
    up = await upstream_factory(validating_origin(state))
    gw = await cached(up, cache={"x_cache_status": True})
    r1 = await gw.client.get("/r")
    assert r1.headers["x-served"] == "1"
    mock_clock.jump(11)
    state["cc"] = "max-age=100"
    r2 = await gw.client.get("/r")
    assert r2.status == 200 and r2.content == b"body1"
    assert state["seen"][-1]["if-none-match"] == '"e1"'
    assert status_of(r2) == "triogate; fwd=stale; fwd-status=304; stored; ttl=100"
    assert r2.headers["x-cache-status"] == "Refresh"
    assert r2.headers["x-served"] == "2" and r2.headers["cache-control"] == "max-age=100"
    mock_clock.jump(50)
    r3 = await gw.client.get("/r")
    assert "hit" in status_of(r3) and r3.headers["x-served"] == "2" and r3.headers["age"] == "50"
    assert len(state["seen"]) == 2


async def test_changed_resource_replaces_entry(upstream_factory, cached, mock_clock) -> None:
    state = {"version": 1, "seen": []}
    gw = await cached(await upstream_factory(validating_origin(state)))
    await gw.client.get("/r")
    mock_clock.jump(11)
    state["version"] = 2
    r = await gw.client.get("/r")
    assert r.content == b"body2"
    assert (await gw.client.get("/r")).content == b"body2"
    assert len(state["seen"]) == 2


async def test_last_modified_revalidation(upstream_factory, cached, status_of, mock_clock) -> None:
    state = {"version": 1, "seen": [], "etag": False, "lm": True}
    gw = await cached(await upstream_factory(validating_origin(state)))
    await gw.client.get("/lm")
    mock_clock.jump(11)
    r = await gw.client.get("/lm")
    assert state["seen"][-1] == {"if-none-match": None, "if-modified-since": LM}
    assert r.content == b"body1" and "fwd-status=304" in status_of(r)


async def test_response_no_cache_is_stored_but_always_validated(upstream_factory, cached, status_of) -> None:
    state = {"version": 1, "seen": [], "cc": "no-cache"}
    gw = await cached(await upstream_factory(validating_origin(state)))
    await gw.client.get("/nc")
    r = await gw.client.get("/nc")
    assert r.content == b"body1" and status_of(r).startswith("triogate; fwd=stale; fwd-status=304")
    assert len(state["seen"]) == 2


async def test_fresh_entry_answers_client_conditionals(upstream_factory, cached, status_of) -> None:
    state = {"version": 1, "seen": [], "lm": True}
    gw = await cached(await upstream_factory(validating_origin(state)))
    await gw.client.get("/c")
    r = await gw.client.get("/c", headers={"if-none-match": 'W/"e1"'})
    assert r.status == 304 and r.content == b""
    assert r.headers["etag"] == '"e1"' and "hit" in status_of(r) and "age" in r.headers
    assert "x-version" not in r.headers
    r = await gw.client.get("/c", headers={"if-none-match": '"other"'})
    assert r.status == 200 and r.content == b"body1"
    r = await gw.client.get("/c", headers={"if-modified-since": format_http_date(time.time())})
    assert r.status == 304
    r = await gw.client.get("/c", headers={"if-modified-since": format_http_date(time.time() - 10 * 86400)})
    assert r.status == 200
    assert len(state["seen"]) == 1


async def test_client_conditional_on_stale_entry(upstream_factory, cached, mock_clock) -> None:
    state = {"version": 1, "seen": []}
    gw = await cached(await upstream_factory(validating_origin(state)))
    await gw.client.get("/s")
    mock_clock.jump(11)
    r = await gw.client.get("/s", headers={"if-none-match": '"e1"'})
    assert r.status == 304  # validated upstream with the cache's own validator, then the client's evaluated
    assert state["seen"][-1]["if-none-match"] == '"e1"'
    mock_clock.jump(11)
    r = await gw.client.get("/s", headers={"if-none-match": '"e0"'})
    assert r.status == 200 and r.content == b"body1"
    assert state["seen"][-1]["if-none-match"] == '"e1"'


async def test_conditional_miss_passes_the_origin_304(upstream_factory, cached, status_of) -> None:
    state = {"version": 1, "seen": []}
    up = await upstream_factory(validating_origin(state))
    gw = await cached(up)
    r = await gw.client.get("/m", headers={"if-none-match": '"e1"'})
    assert r.status == 304 and "fwd=uri-miss; fwd-status=304" in status_of(r) and "stored" not in status_of(r)
