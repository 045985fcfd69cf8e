"""What the upstream learns: claim headers (client copies dropped), the access token, the consumer."""

from __future__ import annotations

import triogate
from oidc_support import Browser, config, login
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_oidc import OidcPlugin

API = {"accept": "application/json"}


async def test_client_copies_of_identity_headers_are_dropped(start, idp: IdentityProvider, browser: Browser) -> None:
    idp.user = {**idp.user, "tenant": {"id": "t-1"}, "evil": "x\r\nInjected: 1"}
    gw = await start(claims_to_headers={"sub": "x-user", "tenant.id": "x-tenant", "evil": "x-evil",
                                        "missing": "x-missing"})
    await login(browser, gw)
    r = await browser.get(gw.url + "/app/x", {**API, "x-user": "admin", "x-missing": "forged",
                                              "x-consumer-username": "root"})
    h = r.json()["headers"]
    assert h["x-user"] == ["user-1"] and h["x-tenant"] == ["t-1"]
    assert "x-missing" not in h and "x-consumer-username" not in h
    assert "\r" not in "".join(h.get("x-evil", []))
    # without a session the forged copies are dropped too (the 401 never reaches the upstream anyway)
    browser.cookies.clear()
    r = await browser.get(gw.url + "/app/x", {**API, "x-user": "admin"})
    assert r.status == 401


async def test_pass_access_token(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start(pass_access_token=True)
    seen = await login(browser, gw)
    auth = seen[-1].json()["headers"]["authorization"]
    assert len(auth) == 1 and auth[0].startswith("Bearer ey")
    r = await browser.get(gw.url + "/app/x", {**API, "authorization": "Bearer forged"})
    assert r.json()["headers"]["authorization"] == auth


async def test_consumer_by_subject(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider,
                                   browser: Browser) -> None:
    seen: list[triogate.Principal | None] = []

    class Spy(triogate.Plugin):
        priority = 900

        @triogate.hookimpl
        async def transform(self, ctx: triogate.Context) -> None:
            seen.append(ctx.principal)

    consumers = {"alice": {"groups": ["staff"], "custom_id": "A-1", "credentials": {"oidc": {"subject": "user-1"}}}}
    cfg = config(upstream, idp, consumers, extra={"spy": {}})
    gw = await gateway_factory(cfg, plugins={"oidc": OidcPlugin, "spy": Spy})
    r = (await login(browser, gw))[-1]
    h = r.json()["headers"]
    assert h["x-consumer-username"] == ["alice"] and h["x-consumer-custom-id"] == ["A-1"]
    p = seen[-1]
    assert p is not None
    assert (p.consumer, p.credential, p.groups, p.method, p.anonymous) == (
        "alice", "user-1", frozenset({"staff"}), "oidc", False)
    assert p.claims["email"] == "user-1@example.test"
    assert "openid" in p.scopes
    # another user: authenticated, no consumer
    idp.user = {"sub": "user-2"}
    other = Browser()
    try:
        r = (await login(other, gw))[-1]
        assert "x-consumer-username" not in r.json()["headers"]
        assert seen[-1] is not None and seen[-1].consumer is None and seen[-1].credential == "user-2"
    finally:
        await other.aclose()
