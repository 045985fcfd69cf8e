"""Attacks on the callback: wrong or replayed state, replayed code, PKCE, nonce, audience, issuer,
signature -- each a 400/401 that sets no session cookie."""

from __future__ import annotations

import time

import pytest
import trio
from oidc_support import Browser, login, query_of
from triogate.testing import IdentityProvider


def no_session(browser: Browser) -> bool:
    return not any(n.startswith("triogate_session") and not n.startswith("triogate_session_login_")
                   for n in browser.cookies)


async def to_callback(browser: Browser, gw, path: str = "/app/page") -> str:
    """Run the flow up to the provider's redirect back; returns the callback URL (not visited)."""
    first = await browser.get(gw.url + path)
    assert first.status == 302
    back = await browser.get(first.headers["location"])
    assert back.status == 302
    return back.headers["location"]


def assert_problem(resp, status: int) -> None:
    assert resp.status == status, resp.content
    assert resp.headers["content-type"] == "application/problem+json"
    assert "request_id" in resp.json()
    assert not any(v.startswith(("triogate_session=", "triogate_session_0="))
                   for v in resp.headers.get_all("set-cookie"))


async def test_wrong_state(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    url = await to_callback(browser, gw)
    q = query_of(url)
    r = await browser.get(f"{gw.url}/oauth2/callback?code={q['code']}&state=forged-{q['state']}")
    assert_problem(r, 400)
    assert no_session(browser)
    assert idp.calls["token"] == 0  # the code was never spent on a forged state


async def test_state_must_match_whole(start, idp: IdentityProvider, browser: Browser) -> None:
    """The login cookie is named after the state's first characters; the whole state must still match."""
    gw = await start()
    q = query_of(await to_callback(browser, gw))
    r = await browser.get(f"{gw.url}/oauth2/callback?code={q['code']}&state={q['state'][:12]}X")
    assert_problem(r, 400)
    assert no_session(browser) and idp.calls["token"] == 0


async def test_callback_without_login_cookie(start, idp: IdentityProvider, browser: Browser) -> None:
    """A login started in another browser (login CSRF) or with the cookie cleared."""
    gw = await start()
    url = await to_callback(browser, gw)
    browser.cookies.clear()
    assert_problem(await browser.get(url), 400)
    assert no_session(browser)


async def test_replayed_callback(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    url = await to_callback(browser, gw)
    saved_login_cookie = dict(browser.cookies)
    assert any(n.startswith("triogate_session_login_") for n in saved_login_cookie)
    assert (await browser.get(url)).status == 302
    assert not no_session(browser)
    # the same callback again in this browser: the state is spent
    browser.cookies.pop("triogate_session")
    assert_problem(await browser.get(url), 400)
    assert no_session(browser)
    # with a copy of the login cookie (stolen before use): the provider refuses the used code
    thief = Browser()
    try:
        thief.cookies.update(saved_login_cookie)
        r = await thief.get(url)
        assert_problem(r, 401)
        assert no_session(thief)
    finally:
        await thief.aclose()
    assert idp.calls["token"] == 2


async def test_code_for_another_pkce_challenge(start, idp: IdentityProvider, browser: Browser) -> None:
    """An attacker who swaps the code_challenge (or injects a code obtained with their own) fails at the token endpoint."""
    gw = await start()
    first = await browser.get(gw.url + "/app/page")
    tampered = first.headers["location"].replace("code_challenge=", "code_challenge=X")
    back = await browser.get(tampered)
    r = await browser.get(back.headers["location"])
    assert_problem(r, 401)
    assert no_session(browser)
    assert idp.token_requests[-1]["code_verifier"]


@pytest.mark.parametrize("overrides", [
    {"nonce": "someone-elses-nonce"},
    {"nonce": None},
    {"aud": "another-client"},
    {"aud": ["gateway", "another-client"]},  # several audiences and no azp
    {"azp": "another-client"},
    {"iss": "https://evil.example"},
    {"exp": int(time.time()) - 3600},
    {"sub": None},
])
async def test_bad_id_token(start, idp: IdentityProvider, browser: Browser, overrides) -> None:
    gw = await start()
    idp.id_token_overrides = overrides
    r = await browser.get(await to_callback(browser, gw))
    assert_problem(r, 401)
    assert no_session(browser)


async def test_id_token_signed_with_an_unpublished_key(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start(jwks_refresh_min_interval=0)
    hidden = idp.add_key("RS256", publish=False)
    real_mint = idp.mint
    idp.mint = lambda kid=None, **kw: real_mint(hidden, **kw)  # type: ignore[method-assign]
    r = await browser.get(await to_callback(browser, gw))
    assert_problem(r, 401)
    assert no_session(browser)


async def test_hmac_id_token_is_refused(start, idp: IdentityProvider, browser: Browser) -> None:
    """An ID token MACed with the client secret (or any HS*) is never accepted: only the provider's JWKS counts."""
    gw = await start()
    real_mint = idp.mint
    idp.mint = lambda kid=None, **kw: real_mint(key=idp.client_secret.encode() * 3, alg="HS256", **kw)  # type: ignore[method-assign]
    r = await browser.get(await to_callback(browser, gw))
    assert_problem(r, 401)
    assert no_session(browser)


async def test_provider_says_no(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    idp.authorize_error = "access_denied"
    r = await browser.get(await to_callback(browser, gw))
    assert_problem(r, 401)
    assert "access_denied" in r.json()["detail"]
    assert no_session(browser)


async def test_login_takes_too_long(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start(login_timeout=0.3)
    url = await to_callback(browser, gw)
    await trio.sleep(0.35)
    assert_problem(await browser.get(url), 400)
    assert idp.calls["token"] == 0


async def test_callback_without_code(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    q = query_of(await to_callback(browser, gw))
    assert_problem(await browser.get(f"{gw.url}/oauth2/callback?state={q['state']}"), 400)


async def test_logins_in_two_tabs(start, idp: IdentityProvider, browser: Browser) -> None:
    """Two pages sent to the login at once: both callbacks work (the login cookie holds a few)."""
    gw = await start()
    a = await browser.get(gw.url + "/app/a")
    b = await browser.get(gw.url + "/app/b")
    back_a = await browser.get(a.headers["location"])
    back_b = await browser.get(b.headers["location"])
    r = await browser.get(back_b.headers["location"])
    assert (r.status, r.headers["location"]) == (302, "/app/b")
    r = await browser.get(back_a.headers["location"])
    assert (r.status, r.headers["location"]) == (302, "/app/a")


async def test_provider_down_at_login(start, idp: IdentityProvider, browser: Browser) -> None:
    idp.outage = "error"
    gw = await start(http_timeout=0.5, jwks_refresh_min_interval=0.1)
    r = await browser.get(gw.url + "/app/page")
    assert_problem(r, 503)
    idp.outage = None
    await trio.sleep(0.15)
    await login(browser, gw)


async def test_token_endpoint_down_at_callback(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    url = await to_callback(browser, gw)
    idp.outage = "error"
    assert_problem(await browser.get(url), 502)
    assert no_session(browser)
