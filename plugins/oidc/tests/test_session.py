"""The session cookie: sealed and authenticated, rotated keys, chunks, lifetime, attributes."""

from __future__ import annotations

import trio
from oidc_support import KEY, OLD_KEY, PAGE, Browser, config, login
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_oidc import OidcPlugin

XHR = {"accept": "application/json", "x-requested-with": "XMLHttpRequest"}


def session_cookies(browser: Browser) -> dict[str, str]:
    return {n: v for n, (v, _, _) in browser.cookies.items()
            if n.startswith("triogate_session") and not n.startswith("triogate_session_login_")}


async def test_tampered_cookie(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    await login(browser, gw)
    value, path, line = browser.cookies["triogate_session"]
    flipped = value[:40] + ("A" if value[40] != "A" else "B") + value[41:]
    browser.cookies["triogate_session"] = (flipped, path, line)
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert "triogate_session=; Path=/; Max-Age=0" in r.headers.get_all("set-cookie")[0]
    # a navigation with a tampered cookie goes to the login and clears it
    browser.cookies["triogate_session"] = (flipped, path, line)
    r = await browser.get(gw.url + "/app/x")
    assert r.status == 302 and r.headers["location"].startswith(idp.authorization_endpoint)
    assert any(v.startswith("triogate_session=;") for v in r.headers.get_all("set-cookie"))


async def test_cookie_of_a_stranger_is_garbage(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    for junk in ("x", "", "a" * 5000, "AQ" * 30, "%%%"):
        r = await browser.get(gw.url + "/app/x", {**XHR, "cookie": f"triogate_session={junk}"})
        assert r.status == 401


async def test_key_rotation(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider, browser: Browser) -> None:
    """Sessions sealed with the old key still work while it is listed second; removed, they end."""
    gw = await gateway_factory(config(upstream, idp, cookie_keys=[OLD_KEY]), plugins={"oidc": OidcPlugin})
    await login(browser, gw)
    old_session = dict(browser.cookies)
    await gw.reload(config(upstream, idp, cookie_keys=[KEY, OLD_KEY]))
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 200
    fresh = Browser()
    try:
        await login(fresh, gw)
        await gw.reload(config(upstream, idp, cookie_keys=[KEY]))
        assert (await fresh.get(gw.url + "/app/x", XHR)).status == 200  # new sessions: sealed with the first key
    finally:
        await fresh.aclose()
    browser.cookies.clear()
    browser.cookies.update(old_session)
    assert (await browser.get(gw.url + "/app/x", XHR)).status == 401


async def test_large_session_is_chunked(start, idp: IdentityProvider, browser: Browser) -> None:
    idp.user = {**idp.user, "groups": [f"group-number-{i:04d}" for i in range(400)]}
    gw = await start(claims_to_headers={"sub": "x-user"})
    seen = await login(browser, gw)
    cookies = session_cookies(browser)
    assert "triogate_session" not in cookies
    assert len(cookies) >= 3 and sorted(cookies) == [f"triogate_session_{i}" for i in range(len(cookies))]
    for line in seen[2].headers.get_all("set-cookie"):
        assert len(line) < 4096
    r = await browser.get(gw.url + "/app/x", XHR)
    assert r.status == 200 and r.json()["headers"]["x-user"] == ["user-1"]
    assert "cookie" not in r.json()["headers"]
    # a small session after logout and login replaces every chunk
    idp.user = {"sub": "user-2"}
    await browser.visit(gw.url + "/oauth2/logout")
    await login(browser, gw)
    assert list(session_cookies(browser)) == ["triogate_session"]


async def test_stale_chunks_are_expired(start, idp: IdentityProvider, browser: Browser) -> None:
    idp.user = {**idp.user, "groups": [f"group-number-{i:04d}" for i in range(400)]}
    gw = await start()
    await login(browser, gw)
    chunks = session_cookies(browser)
    idp.user = {"sub": "user-2"}
    for n in [n for n in browser.cookies if n.startswith("triogate_session_login_")]:
        del browser.cookies[n]
    r = await browser.visit(gw.url + "/oauth2/login?rd=/app/y")  # a new login while the chunks are still there
    assert r[-1].status == 200
    assert list(session_cookies(browser)) == ["triogate_session"]
    assert len(chunks) >= 2


async def test_session_too_large(start, idp: IdentityProvider, browser: Browser) -> None:
    idp.user = {**idp.user, "groups": [f"group-number-{i:04d}" for i in range(400)]}
    gw = await start(cookie_max_chunks=2)
    seen = await browser.visit(gw.url + "/app/x")
    assert seen[-1].status == 502
    assert seen[-1].headers["content-type"] == "application/problem+json"
    assert session_cookies(browser) == {}


async def test_session_lifetime(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start(session_lifetime=0.5)
    await login(browser, gw)
    assert (await browser.get(gw.url + "/app/x", XHR)).status == 200
    await trio.sleep(0.55)
    r = await browser.get(gw.url + "/app/x", {**XHR, "cookie": "triogate_session=" + browser.cookies["triogate_session"][0]})
    assert r.status == 401


async def test_cookie_attributes(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start(cookie_secure=True, cookie_name="app_sess", cookie_domain="example.test")
    first = await browser.get(gw.url + "/app/x")
    (login_cookie,) = first.headers.get_all("set-cookie")
    assert login_cookie.startswith("app_sess_login_")
    for attr in ("Path=/oauth2/callback", "HttpOnly", "SameSite=Lax", "Secure", "Domain=example.test"):
        assert attr in login_cookie
    back = await browser.get(first.headers["location"])
    done = await browser.get(back.headers["location"])
    (session,) = [v for v in done.headers.get_all("set-cookie") if v.startswith("app_sess=")]
    for attr in ("Path=/", "HttpOnly", "SameSite=Lax", "Secure", "Domain=example.test", "Max-Age=28800"):
        assert attr in session


async def test_host_prefixed_cookies(start, idp: IdentityProvider, browser: Browser) -> None:
    """A __Host- name (no subdomain can set or shadow it): every cookie has Path=/ and Secure, or browsers drop it."""
    gw = await start(cookie_secure=True, cookie_name="__Host-app")
    seen = await browser.visit(gw.url + "/app/x")
    assert [r.status for r in seen] == [302, 302, 302, 200]
    set_cookies = [v for r in seen for v in r.headers.get_all("set-cookie")]
    names = [v.split("=", 1)[0] for v in set_cookies]
    assert "__Host-app" in names and any(n.startswith("__Host-app_login_") for n in names), names
    for v in set_cookies:
        attrs = [a.strip() for a in v.split(";")[1:]]
        assert "Path=/" in attrs and "Secure" in attrs and not any(a.startswith("Domain") for a in attrs), v


async def test_not_navigations_get_401(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    for headers in (XHR, {"accept": "application/json"}, {**PAGE, "sec-fetch-mode": "cors"},
                    {"accept": "*/*"}, {}):
        r = await browser.get(gw.url + "/app/x", headers)
        assert r.status == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == 'Cookie realm="triogate", login="/oauth2/login"'
    r = await browser.http.fetch("POST", gw.url + "/app/x", headers=PAGE, body=b"x")
    assert r.status == 401
    assert (await browser.get(gw.url + "/app/x", PAGE)).status == 302
    assert (await browser.get(gw.url + "/app/x", {"accept": "text/html"})).status == 302


async def test_other_cookies_pass_and_odd_ones_do_not_hide_the_session(start, idp: IdentityProvider,
                                                                       browser: Browser) -> None:
    gw = await start()
    await login(browser, gw)
    session = browser.cookie_header("/app")
    odd = 'prefs={"theme": "dark"}; tracking=a b c'
    r = await browser.http.fetch("GET", gw.url + "/app/x", headers={**XHR, "cookie": f"{odd}; {session}; lang=en"})
    assert r.status == 200
    assert r.json()["headers"]["cookie"] == [f"{odd}; lang=en"]  # only the plugin's own cookies are removed
