"""Response freshness: max-age, s-maxage, Expires, heuristics, Age; driven by trio's mock clock."""

from __future__ import annotations

import time

from triogate import Response
from triogate.testing import UpstreamServer
from triogate_cache.directives import format_http_date


def origin(headers: dict[str, str] | None = None, status: int = 200):
    n = {"count": 0}

    async def handler(req):
        n["count"] += 1
        return Response(status, list((headers or {}).items()) + [("content-type", "text/plain")],
                        f"v{n['count']}".encode())

    return handler


async def test_max_age_hit_then_stale(upstream_factory, cached, mock_clock, calls, status_of) -> None:
    up: UpstreamServer = await upstream_factory(origin({"cache-control": "max-age=60"}))
    gw = await cached(up)
    r1 = await gw.client.get("/a")
    assert r1.content == b"v1"
    assert status_of(r1) == "triogate; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    mock_clock.jump(10)
    r2 = await gw.client.get("/a")
    assert r2.content == b"v1"
    assert status_of(r2) == "triogate; hit; ttl=50"
    assert r2.headers["age"] == "10"
    assert r2.headers["content-length"] == "2"
    mock_clock.jump(51)
    r3 = await gw.client.get("/a")
    assert r3.content == b"v2"
    assert status_of(r3).startswith("triogate; fwd=stale; fwd-status=200; stored")
    assert calls(up, "/a") == 2


async def test_s_maxage_wins_over_max_age_and_expires(upstream_factory, cached, mock_clock, status_of) -> None:
    past = format_http_date(time.time() - 3600)
    up = await upstream_factory(origin({"cache-control": "max-age=5, s-maxage=100", "expires": past}))
    gw = await cached(up)
    await gw.client.get("/s")
    mock_clock.jump(50)
    r = await gw.client.get("/s")
    assert r.content == b"v1" and "hit" in status_of(r)


async def test_expires(upstream_factory, cached, mock_clock) -> None:
    now = time.time()
    up = await upstream_factory(origin({"date": format_http_date(now), "expires": format_http_date(now + 30)}))
    gw = await cached(up)
    await gw.client.get("/e")
    mock_clock.jump(20)
    assert (await gw.client.get("/e")).content == b"v1"
    mock_clock.jump(11)
    assert (await gw.client.get("/e")).content == b"v2"


async def test_invalid_expires_means_already_expired(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(origin({"expires": "0"}))
    gw = await cached(up)
    await gw.client.get("/x")
    r = await gw.client.get("/x")
    assert r.content == b"v2"
    assert "detail=not-fresh" in status_of(r)


async def test_heuristic_freshness_from_last_modified(upstream_factory, cached, mock_clock, wall_clock,
                                                     status_of) -> None:
    now = wall_clock  # the gateway's wall clock, pinned: the origin's Date is exactly "now"
    up = await upstream_factory(origin({"date": format_http_date(now),
                                        "last-modified": format_http_date(now - 1000)}))
    gw = await cached(up)
    r1 = await gw.client.get("/h")
    assert "stored; ttl=100" in status_of(r1)  # 10% of 1000 s
    mock_clock.jump(90)
    assert (await gw.client.get("/h")).content == b"v1"
    mock_clock.jump(11)
    # stale: revalidated with If-Modified-Since; the origin ignores it and sends a new body
    assert (await gw.client.get("/h")).content == b"v2"
    assert up.requests[-1].headers.get("if-modified-since") == format_http_date(now - 1000)


async def test_no_heuristic_for_statuses_that_do_not_allow_it(upstream_factory, cached, mock_clock, calls, status_of) -> None:
    up = await upstream_factory(origin({}, status=302))
    gw = await cached(up, cache={"default_ttl": 60})
    await gw.client.get("/r")
    r = await gw.client.get("/r")
    assert calls(up, "/r") == 2
    assert "detail=not-fresh" in status_of(r)


async def test_default_ttl_applies_only_without_explicit_freshness(upstream_factory, cached, mock_clock, status_of) -> None:
    plain = await upstream_factory(origin({}))
    gw = await cached(plain, cache={"default_ttl": 30})
    r1 = await gw.client.get("/d")
    assert "stored; ttl=30" in status_of(r1)
    mock_clock.jump(29)
    assert (await gw.client.get("/d")).content == b"v1"
    explicit = await upstream_factory(origin({"cache-control": "max-age=0"}))
    gw2 = await cached(explicit, cache={"default_ttl": 30})
    await gw2.client.get("/d")
    assert (await gw2.client.get("/d")).content == b"v2"


async def test_no_freshness_no_validators_is_not_stored(upstream_factory, cached, calls, status_of) -> None:
    up = await upstream_factory(origin({}))
    gw = await cached(up)
    r = await gw.client.get("/n")
    assert status_of(r) == "triogate; fwd=uri-miss; fwd-status=200; detail=not-fresh"
    await gw.client.get("/n")
    assert calls(up, "/n") == 2


async def test_age_counts_upstream_age_and_resident_time(upstream_factory, cached, mock_clock, calls, status_of) -> None:
    up = await upstream_factory(origin({"cache-control": "max-age=100", "age": "30"}))
    gw = await cached(up)
    r1 = await gw.client.get("/age")
    assert r1.headers["age"] == "30"  # passed through as the origin said
    assert "ttl=70" in status_of(r1)
    mock_clock.jump(5)
    r2 = await gw.client.get("/age")
    assert r2.headers["age"] == "35"
    assert "ttl=65" in status_of(r2)
    mock_clock.jump(66)
    await gw.client.get("/age")
    assert calls(up, "/age") == 2


async def test_apparent_age_from_an_old_date(upstream_factory, cached) -> None:
    up = await upstream_factory(origin({"cache-control": "max-age=100",
                                        "date": format_http_date(time.time() - 40)}))
    gw = await cached(up)
    await gw.client.get("/old")
    r = await gw.client.get("/old")
    assert 40 <= int(r.headers["age"]) <= 42


async def test_no_store_and_private_are_never_stored(upstream_factory, cached, status_of) -> None:
    for cc, detail in (("no-store, max-age=60", "no-store"), ("private, max-age=60", "private")):
        up = await upstream_factory(origin({"cache-control": cc}))
        gw = await cached(up)
        await gw.client.get("/p")
        r = await gw.client.get("/p")
        assert r.content == b"v2", cc
        assert f"detail={detail}" in status_of(r)


async def test_qualified_private_strips_the_named_fields(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(origin({"cache-control": 'max-age=60, private="x-secret"', "x-secret": "s1",
                                        "x-public": "p"}))
    gw = await cached(up)
    r1 = await gw.client.get("/q")
    assert r1.headers["x-secret"] == "s1"  # the response itself passes untouched
    r2 = await gw.client.get("/q")
    assert "hit" in status_of(r2)
    assert "x-secret" not in r2.headers and r2.headers["x-public"] == "p"


async def test_set_cookie_responses_are_not_shared_by_default(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(origin({"cache-control": "max-age=60", "set-cookie": "session=abc"}))
    gw = await cached(up)
    await gw.client.get("/c")
    r = await gw.client.get("/c")
    assert r.content == b"v2" and "detail=set-cookie" in status_of(r)
    gw2 = await cached(await upstream_factory(origin({"cache-control": "max-age=60", "set-cookie": "a=b"})),
                       cache={"store_set_cookie": True})
    await gw2.client.get("/c")
    assert "hit" in status_of(await gw2.client.get("/c"))


async def test_uncacheable_status_and_method_bypass(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(origin({"cache-control": "max-age=60"}, status=500))
    gw = await cached(up, cache={"x_cache_status": True})
    r = await gw.client.get("/err")
    assert "detail=status" in status_of(r)
    assert r.headers["x-cache-status"] == "Miss"
    r2 = await gw.client.request("OPTIONS", "/err")
    assert status_of(r2) == "triogate; fwd=bypass; detail=method"
    assert r2.headers["x-cache-status"] == "Bypass"


async def test_cache_status_is_appended_to_upstream_caches(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(origin({"cache-control": "max-age=60", "cache-status": "origin-cdn; hit"}))
    gw = await cached(up)
    r = await gw.client.get("/cs")
    assert status_of(r) == "origin-cdn; hit, triogate; fwd=uri-miss; fwd-status=200; stored; ttl=60"
