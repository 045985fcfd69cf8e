"""session_store = "redis": the cookie holds only the sealed session id; logout revokes every copy;
one refresh per session across gateways; Redis down is a 503, never a crash or a silent login."""

from __future__ import annotations

import trio
from oidc_support import Browser, config, login
from triogate.testing import IdentityProvider, RedisServer, UpstreamServer, redis_command
from triogate_oidc import OidcPlugin

XHR = {"accept": "application/json", "x-requested-with": "XMLHttpRequest"}
FAST = {"connect_timeout": 0.5, "timeout": 0.5, "health_check_interval": 0.1}


def redis_settings(server: RedisServer, **settings):
    return {"session_store": "redis", "redis": {"url": server.url, **FAST}, **settings}


def refreshes(idp: IdentityProvider) -> int:
    return sum(1 for r in idp.token_requests if r["grant_type"] == "refresh_token")


async def session_keys(server: RedisServer) -> list[bytes]:
    return await redis_command(server.port, "KEYS", "triogate:oidc:*:s")


async def test_small_cookie_session_in_redis(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider,
                                             browser: Browser, redis_server: RedisServer) -> None:
    idp.user = {**idp.user, "groups": [f"group-number-{i:04d}" for i in range(400)]}  # would need chunks
    gw = await gateway_factory(config(upstream, idp, **redis_settings(redis_server, claims_to_headers={"sub": "x-user"})),
                               plugins={"oidc": OidcPlugin})
    seen = await login(browser, gw)
    assert seen[-1].json()["headers"]["x-user"] == ["user-1"]
    names = [n for n in browser.cookies if n.startswith("triogate_session") and "_login_" not in n]
    assert names == ["triogate_session"] and len(browser.cookies["triogate_session"][0]) < 200
    (key,) = await session_keys(redis_server)
    value = await redis_command(redis_server.port, "GET", key)
    assert len(value) > 5000
    for word in (b"user-1", b"group-number", b"eyJ"):  # tokens and claims are sealed in Redis too
        assert word not in value
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 200 and r.json()["headers"]["x-user"] == ["user-1"]


async def test_logout_revokes_every_copy(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider,
                                         browser: Browser, redis_server: RedisServer) -> None:
    gw = await gateway_factory(config(upstream, idp, **redis_settings(redis_server)), plugins={"oidc": OidcPlugin})
    await login(browser, gw)
    stolen = browser.cookie_header("/app")
    assert (await browser.get(gw.url + "/oauth2/logout")).status == 302
    assert await session_keys(redis_server) == []
    r = await browser.http.fetch("GET", gw.url + "/app/x", headers={**XHR, "cookie": stolen})
    assert r.status == 401  # the copy made before logout is dead too


async def test_one_refresh_across_gateways(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider,
                                           browser: Browser, redis_server: RedisServer) -> None:
    """Two gateways (as two workers or hosts) share the Redis lock: one refresh for the session."""
    cfg = config(upstream, idp, **redis_settings(redis_server, refresh_margin=3600))
    cfg["routes"]["app"]["plugins"]["oidc"]["redis"]["timeout"] = 5.0
    gws = [await gateway_factory(cfg, plugins={"oidc": OidcPlugin}) for _ in range(2)]
    idp.access_token_ttl = 600
    await login(browser, gws[0])  # with a margin longer than the tokens' life, every request of it is due
    before = refreshes(idp)
    cookie = browser.cookie_header("/app")
    idp.delay = 0.3
    statuses: list[int] = []

    async def one(gw) -> None:
        r = await browser.http.fetch("GET", gw.url + "/app/x", headers={**XHR, "cookie": cookie}, timeout=10)
        statuses.append(r.status)
        assert not r.headers.get_all("set-cookie")  # the cookie (the session id) does not change

    async with trio.open_nursery() as n:
        for i in range(8):
            n.start_soon(one, gws[i % 2])
    assert statuses == [200] * 8
    assert refreshes(idp) - before == 1


async def test_redis_down(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider, browser: Browser,
                          redis_server: RedisServer) -> None:
    gw = await gateway_factory(config(upstream, idp, **redis_settings(redis_server)), plugins={"oidc": OidcPlugin})
    await login(browser, gw)
    await redis_server.stop()
    with trio.fail_after(5):
        while True:
            r = await browser.get(gw.url + "/app/x", XHR)
            if r.status == 503:
                break
            await trio.sleep(0.05)
    assert r.headers["content-type"] == "application/problem+json"
    seen = await browser.visit(gw.url + "/app/x")  # a new login cannot be stored either
    assert seen[-1].status == 503
    await redis_server.start()
    with trio.fail_after(5):
        while (await browser.get(gw.url + "/app/x", XHR)).status == 503:
            await trio.sleep(0.05)
    fresh = Browser()
    try:
        await login(fresh, gw)
    finally:
        await fresh.aclose()
