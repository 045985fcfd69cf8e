"""Nothing lives in a worker's memory: a login started on one gateway (or worker) finishes on
another, and the session works on both -- what workers = N and several hosts need."""

from __future__ import annotations

from oidc_support import Browser, config
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_oidc import OidcPlugin


async def test_login_started_on_one_gateway_finishes_on_another(gateway_factory, upstream: UpstreamServer,
                                                               idp: IdentityProvider, browser: Browser) -> None:
    cfg = config(upstream, idp, claims_to_headers={"sub": "x-user"})
    one = await gateway_factory(cfg, plugins={"oidc": OidcPlugin})
    two = await gateway_factory(cfg, plugins={"oidc": OidcPlugin})
    first = await browser.get(one.url + "/app/page")
    back = await browser.get(first.headers["location"])
    callback = back.headers["location"]
    assert callback.startswith(one.url + "/oauth2/callback?")
    done = await browser.get(callback.replace(one.url, two.url))  # the other instance gets the callback
    assert (done.status, done.headers["location"]) == (302, "/app/page")
    for gw in (one, two):
        r = await browser.get(gw.url + "/app/page", {"accept": "application/json"})
        assert r.status == 200 and r.json()["headers"]["x-user"] == ["user-1"]
