"""The README's caching example: the default gateway.toml's /api/cached/users route in front of the
two demo users instances (on free loopback ports), with the mock clock driving freshness."""

from __future__ import annotations

import tomllib
from pathlib import Path

from triogate_cache import Cache
from triogate_demo import SERVICES, make_handler

ROOT = Path(__file__).resolve().parents[1]


async def test_cached_users_hit_after_miss(upstream_factory, gateway_factory, mock_clock) -> None:
    raw = tomllib.loads((ROOT / "gateway.toml").read_text())
    servers = [await upstream_factory(make_handler(service, instance), name=instance)
               for service, instance, _ in SERVICES if service == "users"]
    upstreams = {"users": {**raw["upstreams"]["users"], "targets": [{"url": s.url} for s in servers]}}
    upstreams["users"].pop("health_check", None)
    gw = await gateway_factory({"upstreams": upstreams, "routes": {"cached": raw["routes"]["cached"]}},
                               plugins={"cache": Cache})
    first = await gw.client.get("/api/cached/users/1")
    assert first.status == 200 and first.json()["name"] == "Ada Lovelace"
    assert first.headers["cache-status"] == "triogate; fwd=uri-miss; fwd-status=200; stored; ttl=30"
    mock_clock.jump(3)
    hit = await gw.client.get("/api/cached/users/1")
    assert hit.headers["cache-status"] == "triogate; hit; ttl=27"
    assert hit.headers["x-cache-status"] == "Hit" and hit.headers["age"] == "3"
    assert hit.headers["x-served-by"] == first.headers["x-served-by"] and hit.content == first.content
    assert sum(len(s.requests) for s in servers) == 1
    forced = await gw.client.get("/api/cached/users/1", headers={"cache-control": "no-cache"})
    assert forced.headers["cache-status"] == "triogate; fwd=request; fwd-status=200; stored; ttl=30"
    mock_clock.jump(31)
    assert "fwd=stale" in (await gw.client.get("/api/cached/users/1")).headers["cache-status"]
