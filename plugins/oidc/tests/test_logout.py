"""RP-initiated logout: the session cookies go, the browser goes to the provider's end_session_endpoint."""

from __future__ import annotations

from oidc_support import Browser, login, query_of
from triogate.testing import IdentityProvider, UpstreamServer


async def test_logout(start, idp: IdentityProvider, browser: Browser, upstream: UpstreamServer) -> None:
    gw = await start(post_logout_redirect_uri="http://app.example.test/bye")
    await login(browser, gw)
    id_token = None
    r = await browser.get(gw.url + "/oauth2/logout")
    assert r.status == 302
    assert any(v.startswith("triogate_session=;") and "Max-Age=0" in v for v in r.headers.get_all("set-cookie"))
    loc = r.headers["location"]
    assert loc.startswith(idp.end_session_endpoint + "?")
    q = query_of(loc)
    assert q["client_id"] == idp.client_id
    assert q["post_logout_redirect_uri"] == "http://app.example.test/bye"
    id_token = q["id_token_hint"]
    assert id_token.count(".") == 2
    r = await browser.get(loc)
    assert (r.status, r.headers["location"]) == (302, "http://app.example.test/bye")
    assert idp.end_sessions[-1]["id_token_hint"] == id_token
    assert "triogate_session" not in browser.cookies
    r = await browser.get(gw.url + "/app/x")
    assert r.status == 302 and r.headers["location"].startswith(idp.authorization_endpoint)


async def test_logout_without_session(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    r = await browser.get(gw.url + "/oauth2/logout")
    assert r.status == 302
    q = query_of(r.headers["location"])
    assert "id_token_hint" not in q and "post_logout_redirect_uri" not in q


async def test_logout_without_end_session_endpoint(start, idp: IdentityProvider, browser: Browser) -> None:
    full = idp.metadata()
    full.pop("end_session_endpoint")
    idp.metadata = lambda: full  # type: ignore[method-assign]
    gw = await start(logout_redirect="/goodbye")
    await login(browser, gw)
    r = await browser.get(gw.url + "/oauth2/logout")
    assert (r.status, r.headers["location"]) == (302, "/goodbye")
    assert "triogate_session" not in browser.cookies
    assert idp.calls["end_session"] == 0
