"""Refresh with the refresh token before the access token expires; one refresh at a time per session."""

from __future__ import annotations

import pytest
import trio
from oidc_support import Browser, config, login
from triogate.testing import IdentityProvider, RunningGateway, UpstreamServer

XHR = {"accept": "application/json", "x-requested-with": "XMLHttpRequest"}


def refreshes(idp: IdentityProvider) -> int:
    return sum(1 for r in idp.token_requests if r["grant_type"] == "refresh_token")


@pytest.fixture
def due(upstream: UpstreamServer, idp: IdentityProvider):
    """Make every session's access token due for a refresh: a margin longer than its life (a real reload)."""
    async def due(gw: RunningGateway, **settings) -> None:
        assert await gw.reload(config(upstream, idp, refresh_margin=3600, **settings)) == []

    return due


async def test_refresh_before_expiry(start, due, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start(pass_access_token=True)
    seen = await login(browser, gw)
    await due(gw, pass_access_token=True)
    first_token = seen[-1].json()["headers"]["authorization"][0]
    old_cookie = browser.cookies["triogate_session"][0]
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 200
    assert refreshes(idp) == 1
    assert r.json()["headers"]["authorization"][0] != first_token  # the upstream got the new access token
    assert any(v.startswith("triogate_session=") for v in r.headers.get_all("set-cookie"))
    assert browser.cookies["triogate_session"][0] != old_cookie
    assert idp.token_requests[-1]["auth"] == "client_secret_basic"


async def test_no_refresh_while_fresh(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    await login(browser, gw)
    for _ in range(3):
        r = await browser.get(gw.url + "/app/x", XHR)
        assert r.status == 200 and not r.headers.get_all("set-cookie")
    assert refreshes(idp) == 0


async def test_one_refresh_at_a_time(start, due, idp: IdentityProvider, browser: Browser) -> None:
    """Concurrent requests of one session share one refresh, and the rotated refresh token is not spent twice."""
    gw = await start()
    await login(browser, gw)
    await due(gw)
    cookie = browser.cookie_header("/app")
    idp.delay = 0.2
    statuses: list[int] = []

    async def one() -> None:
        r = await browser.http.fetch("GET", gw.url + "/app/x", headers={**XHR, "cookie": cookie}, timeout=10)
        statuses.append(r.status)
        assert any(v.startswith("triogate_session=") for v in r.headers.get_all("set-cookie"))

    async with trio.open_nursery() as n:
        for _ in range(8):
            n.start_soon(one)
    assert statuses == [200] * 8
    assert refreshes(idp) == 1
    idp.delay = 0
    # a request still carrying the old cookie a moment later reuses the refreshed session
    r = await browser.http.fetch("GET", gw.url + "/app/x", headers={**XHR, "cookie": cookie}, timeout=10)
    assert r.status == 200 and refreshes(idp) == 1


async def test_failed_refresh_ends_the_session(start, due, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    await login(browser, gw)
    await due(gw)
    idp.revoke_refresh_tokens()
    cookie = browser.cookie_header("/app")
    r = await browser.http.fetch("GET", gw.url + "/app/x", headers={**XHR, "cookie": cookie}, timeout=10)
    assert r.status == 401
    assert any(v.startswith("triogate_session=;") for v in r.headers.get_all("set-cookie"))
    r = await browser.get(gw.url + "/app/x")  # a navigation: to the login again
    assert r.status == 302 and r.headers["location"].startswith(idp.authorization_endpoint)
    await login(browser, gw)


async def test_without_refresh_token_the_session_ends_with_the_access_token(
        start, idp: IdentityProvider, browser: Browser) -> None:
    idp.issue_refresh_tokens = False
    idp.access_token_ttl = 1
    gw = await start(refresh_margin=0)
    await login(browser, gw)
    assert (await browser.get(gw.url + "/app/x", XHR)).status == 200
    await trio.sleep(1.05)
    assert (await browser.get(gw.url + "/app/x", XHR)).status == 401
    assert refreshes(idp) == 0


async def test_provider_down_during_refresh_keeps_a_valid_session(start, due, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    await login(browser, gw)
    await due(gw, http_timeout=0.5, jwks_refresh_min_interval=0)
    idp.outage = "error"
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 200 and not r.headers.get_all("set-cookie")  # still valid: served, refreshed later
    idp.outage = None
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 200 and refreshes(idp) == 1
    assert any(v.startswith("triogate_session=") for v in r.headers.get_all("set-cookie"))
