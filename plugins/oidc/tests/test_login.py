"""The authorization-code flow end to end: redirect, PKCE, callback, session, claims upstream."""

from __future__ import annotations

from oidc_support import KEY, Browser, login, query_of
from triogate.testing import IdentityProvider, UpstreamServer


async def test_login_flow(start, idp: IdentityProvider, browser: Browser, upstream: UpstreamServer) -> None:
    gw = await start(claims_to_headers={"sub": "x-user", "email": "x-email"})
    first = await browser.get(gw.url + "/app/page?x=1")
    assert first.status == 302
    assert first.headers["cache-control"] == "no-store"
    loc = first.headers["location"]
    assert loc.startswith(idp.authorization_endpoint + "?")
    q = query_of(loc)
    assert q["response_type"] == "code" and q["client_id"] == idp.client_id
    assert q["redirect_uri"] == gw.url + "/oauth2/callback"
    assert q["scope"] == "openid profile email"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 32 and len(q["nonce"]) >= 32 and q["state"] != q["nonce"]
    (login_cookie,) = [v for n, v in browser.cookies.items() if n.startswith("triogate_session_login_")]
    assert "Path=/oauth2/callback" in login_cookie[2] and "HttpOnly" in login_cookie[2]
    assert q["state"] not in login_cookie[0] and q["nonce"] not in login_cookie[0]  # sealed, not readable

    to_idp = await browser.get(loc)
    assert to_idp.status == 302
    callback = await browser.get(to_idp.headers["location"])
    assert callback.status == 302, callback.content
    assert callback.headers["location"] == "/app/page?x=1"
    assert not any(n.startswith("triogate_session_login_") for n in browser.cookies)  # spent
    _, path, line = browser.cookies["triogate_session"]
    assert path == "/" and "HttpOnly" in line and "SameSite=Lax" in line and "Secure" not in line
    assert idp.token_requests[-1]["grant_type"] == "authorization_code"
    assert idp.token_requests[-1]["auth"] == "client_secret_basic"
    assert len(idp.token_requests[-1]["code_verifier"]) >= 43

    page = await browser.get(gw.url + "/app/page?x=1")
    assert page.status == 200
    seen = page.json()
    assert seen["path"] == "/app/page" and seen["query"] == "x=1"
    assert seen["headers"]["x-user"] == ["user-1"]
    assert seen["headers"]["x-email"] == ["user-1@example.test"]
    assert "cookie" not in seen["headers"]  # the sealed session never reaches the upstream
    assert "authorization" not in seen["headers"]
    assert len(idp.token_requests) == 1


async def test_tokens_are_not_readable_from_the_cookie(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    await login(browser, gw)
    sealed = "".join(v for n, (v, _, _) in browser.cookies.items() if n.startswith("triogate_session"))
    import base64

    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    for word in (b"user-1", b"eyJ", b"access", b"refresh", b"example.test"):
        assert word not in raw
    assert KEY not in sealed
