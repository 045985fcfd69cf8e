"""With the cache plugin's stale-if-error on the same route: a stale cached answer wins.

post_response runs in reverse priority order: the cache (priority 100) sees the 5xx first and
replaces it with a stale response inside its stale-if-error window; the fallback (150) then
sees a 200 and does nothing. Without a stale entry the cache keeps the 5xx (it stores no
errors) and the fallback answers; the cache never sees the fallback's answer, so it is never
stored under the primary's key.
"""

from __future__ import annotations

import triogate
from triogate_cache import Cache


async def test_stale_if_error_wins_then_fallback(upstream_factory, start, backup, spy) -> None:
    state = {"fail": False, "n": 0}

    async def primary_handler(req: triogate.Request) -> triogate.Response:
        if state["fail"]:
            return triogate.Response(503, [("content-length", "4")], b"down")
        state["n"] += 1
        body = f"fresh{state['n']}".encode()
        return triogate.Response(200, [("cache-control", "max-age=0, stale-if-error=600"),
                                       ("content-length", str(len(body)))], body)

    primary = await upstream_factory(primary_handler)
    gw = await start(primary.url, {"upstream": "backup"}, plugins={"cache": {}}, classes={"cache": Cache})
    r = await gw.client.get("/api/cached")
    assert r.status == 200 and r.content == b"fresh1"
    state["fail"] = True
    r = await gw.client.get("/api/cached")  # stale (max-age=0) -> revalidated -> 503 -> the stale copy
    assert r.status == 200 and r.content == b"fresh1" and "x-fallback" not in r.headers
    assert spy.seen[-1]["cache"] and "fallback" not in spy.seen[-1]
    assert backup.requests == []

    r = await gw.client.get("/api/other")  # nothing cached for this one: the fallback answers
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup" and r.json()["path"] == "/other"
    state["fail"] = False
    r = await gw.client.get("/api/other")  # the fallback's answer was not stored under the primary's key
    assert r.status == 200 and r.content == b"fresh2" and "x-fallback" not in r.headers


async def test_a_priority_below_the_cache_lets_the_fallback_win(upstream_factory, start, backup, spy) -> None:
    state = {"fail": False}

    async def primary_handler(req: triogate.Request) -> triogate.Response:
        if state["fail"]:
            return triogate.Response(503, [("content-length", "4")], b"down")
        return triogate.Response(200, [("cache-control", "max-age=0, stale-if-error=600"),
                                       ("content-length", "5")], b"fresh")

    primary = await upstream_factory(primary_handler)
    gw = await start(primary.url, {"upstream": "backup", "priority": 50}, plugins={"cache": {}},
                     classes={"cache": Cache})
    assert (await gw.client.get("/api/cached")).content == b"fresh"
    state["fail"] = True
    r = await gw.client.get("/api/cached")  # the fallback replaced the 503 before the cache saw it
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup" and len(backup.requests) == 1
