"""Attacks on a running gateway over real sockets: redirects, logout, callbacks, spoofed identity."""

from __future__ import annotations

import pytest
from oidc_support import PAGE, Browser, login
from triogate.testing import IdentityProvider


def assert_problem(resp, status: int) -> None:
    assert resp.status == status, resp.content
    assert resp.headers["content-type"] == "application/problem+json"
    assert "request_id" in resp.json()

# rd values as the attacker sends them (already percent-encoded where that is the point)
ENCODED_RD = [
    "%2F%2Fevil.example",  # //evil.example after decoding
    "%2F%252F%252Fevil.example",  # /%2F%2Fevil.example after decoding
    "%2F%255Cevil.example",  # /%5Cevil.example
    "%2F%5Cevil.example",  # /\evil.example
    "%2F%09%2Fevil.example",  # a tab, dropped by browsers: //evil.example
    "%2F%0A%2Fevil.example",  # a newline, dropped by browsers
    "%2F%0D%0ASet-Cookie:%20x=1",  # header injection
    "https:evil.example",
    "%2F%E3%80%80evil.example",  # non-ASCII: must not break the response
    "%2F%E2%80%A8%2Fevil.example",
    "%2F%C2%85%2Fevil.example",
]


@pytest.mark.parametrize("rd", ENCODED_RD)
async def test_encoded_return_targets(start, idp: IdentityProvider, browser: Browser, rd: str) -> None:
    gw = await start()
    seen = await browser.visit(f"{gw.url}/oauth2/login?rd={rd}", hops=3)
    assert [r.status for r in seen] == [302, 302, 302], [(r.status, r.content[:300]) for r in seen]
    location = seen[-1].headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert location.isascii() and location.isprintable()
    assert "evil" not in location or location.startswith("/%"), location


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_cross_site_logout_is_refused(start, idp: IdentityProvider, browser: Browser, method: str) -> None:
    """Logout CSRF: an <img src>, link or form on another site must not end the session."""
    gw = await start()
    await login(browser, gw)
    headers = {**PAGE, "sec-fetch-site": "cross-site", "cookie": browser.cookie_header("/oauth2/logout")}
    r = await gw.client.request(method, "/oauth2/logout", headers=headers)
    assert_problem(r, 403)
    assert "set-cookie" not in r.headers
    assert idp.calls["end_session"] == 0
    page = await browser.get(gw.url + "/app/x")
    assert page.status == 200  # still logged in


@pytest.mark.parametrize("site", ["same-origin", "same-site", "none", None])
async def test_own_logout_link_works(start, idp: IdentityProvider, browser: Browser, site: str | None) -> None:
    gw = await start()
    await login(browser, gw)
    r = await browser.get(gw.url + "/oauth2/logout", headers={**PAGE, **({"sec-fetch-site": site} if site else {})})
    assert r.status == 302
    assert "triogate_session" not in browser.cookies


async def test_many_started_logins_are_cleared_at_the_callback(start, idp: IdentityProvider, browser: Browser) -> None:
    """A site sending the browser to many logins leaves a login cookie each; the next callback expires them."""
    gw = await start()
    for _ in range(12):  # twelve logins started, none finished
        r = await browser.get(gw.url + "/oauth2/login")
        assert r.status == 302
    pending = [n for n in browser.cookies if n.startswith("triogate_session_login_")]
    assert len(pending) == 12
    seen = await browser.visit(gw.url + "/app/x")
    assert [r.status for r in seen] == [302, 302, 302, 200]
    assert [n for n in browser.cookies if n.startswith("triogate_session_login_")] == []
    assert "triogate_session" in browser.cookies


async def test_a_huge_return_path_is_not_kept(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    r = await browser.get(gw.url + "/oauth2/login?rd=/" + "a" * 6000)
    assert r.status == 302
    (login_cookie,) = r.headers.get_all("set-cookie")
    assert len(login_cookie) < 1024
    seen = await browser.visit(r.headers["location"], hops=2)
    assert seen[-1].headers["location"] == "/"
