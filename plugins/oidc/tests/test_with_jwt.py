"""API clients with bearer tokens on the same route: jwt next to oidc, an OR as for every auth plugin."""

from __future__ import annotations

from oidc_support import Browser, config, login
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_jwt import JwtPlugin
from triogate_oidc import OidcPlugin

API = {"accept": "application/json"}


async def start_both(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider):
    cfg = config(upstream, idp, extra={"jwt": {"issuer": idp.issuer, "discovery": True,
                                               "claims_to_headers": {"sub": "x-user"}}},
                 claims_to_headers={"sub": "x-user"})
    return await gateway_factory(cfg, plugins={"oidc": OidcPlugin, "jwt": JwtPlugin})


async def test_bearer_token_or_session(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider,
                                       browser: Browser) -> None:
    gw = await start_both(gateway_factory, upstream, idp)
    # an API client with a token from the same provider: no redirect, no cookie
    token = idp.mint(sub="api-client")
    r = await gw.client.get("/api/x", headers={**API, "authorization": f"Bearer {token}"})
    assert r.status == 200 and r.json()["headers"]["x-user"] == ["api-client"]
    assert not r.headers.get_all("set-cookie")
    # even when it asks for HTML: the bearer token authenticated it
    r = await gw.client.get("/api/x", headers={"accept": "text/html", "authorization": f"Bearer {token}"})
    assert r.status == 200
    # nothing at all from an API client: 401 with both challenges
    r = await gw.client.get("/api/x", headers=API)
    assert r.status == 401
    challenges = r.headers.get_all("www-authenticate")
    assert 'Bearer realm="triogate"' in challenges and any(c.startswith("Cookie ") for c in challenges)
    # a bad token from an API client: 401
    r = await gw.client.get("/api/x", headers={**API, "authorization": "Bearer nope"})
    assert r.status == 401
    # a browser: the login flow, then its session cookie
    await login(browser, gw)
    r = await browser.get(gw.url + "/app/x", API)
    assert r.status == 200 and r.json()["headers"]["x-user"] == ["user-1"]


async def test_session_with_a_stale_bearer_header(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider,
                                                  browser: Browser) -> None:
    """A browser whose page also sends an invalid Authorization header still gets in with its session (OR)."""
    gw = await start_both(gateway_factory, upstream, idp)
    await login(browser, gw)
    r = await browser.get(gw.url + "/app/x", {**API, "authorization": "Bearer expired-or-junk"})
    assert r.status == 200 and r.json()["headers"]["x-user"] == ["user-1"]
