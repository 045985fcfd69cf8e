"""The README's login example: the default gateway.toml's /web route (oidc, and jwt for API clients)
in front of the demo users service and the demo OpenID provider (on free loopback ports)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import trio
from triogate.testing import Browser, free_port
from triogate_demo import SERVICES, make_handler, serve_idp
from triogate_jwt import JwtPlugin
from triogate_oidc import OidcPlugin

ROOT = Path(__file__).resolve().parents[1]


async def _demo(nursery: trio.Nursery, upstream_factory: Any, gateway_factory: Any) -> tuple[Any, str]:
    raw = tomllib.loads((ROOT / "gateway.toml").read_text())
    idp_port = free_port()
    await nursery.start(lambda task_status: serve_idp(task_status, port=idp_port))
    issuer = f"http://127.0.0.1:{idp_port}"
    users = [await upstream_factory(make_handler(s, i), name=i) for s, i, _ in SERVICES if s == "users"]
    route = raw["routes"]["web"]
    assert route["plugins"]["oidc"]["issuer"] == route["plugins"]["jwt"]["issuer"] == "http://127.0.0.1:9401"
    route["plugins"]["oidc"]["issuer"] = route["plugins"]["jwt"]["issuer"] = issuer
    # ${VAR:-default} is expanded by the file loader; here the dict goes in as is
    route["plugins"]["oidc"]["client_secret"] = "demo-client-secret"
    route["plugins"]["oidc"]["cookie_keys"] = ["ZGVtby1jb29raWUta2V5LWNoYW5nZS1tZS0wMTIzNDU"]
    config = {"upstreams": {"users": {"targets": [{"url": u.url} for u in users]}}, "routes": {"web": route}}
    gw = await gateway_factory(config, plugins={"oidc": OidcPlugin, "jwt": JwtPlugin})
    return gw, issuer


async def test_login_whoami_logout(nursery, upstream_factory, gateway_factory) -> None:
    gw, issuer = await _demo(nursery, upstream_factory, gateway_factory)
    browser = Browser()
    try:
        seen = await browser.visit(gw.url + "/web/whoami")
        assert [r.status for r in seen] == [302, 302, 302, 200]
        assert seen[0].headers["location"].startswith(issuer + "/authorize?")
        assert seen[-1].json() == {"x-user-id": "1", "x-user-name": "Ada Lovelace", "x-user-email": "ada@example.com",
                                   "x-consumer-username": None}
        assert (await browser.get(gw.url + "/web/users/2", {"accept": "application/json"})).json()["id"] == "2"
        r = await browser.get(gw.url + "/web/oauth2/logout")
        assert r.status == 302 and r.headers["location"].startswith(issuer + "/logout?")
        assert (await browser.get(gw.url + "/web/whoami", {"accept": "application/json"})).status == 401
        # an API client with a token of the same provider (client_credentials): jwt on the same route
        resp = await browser.http.fetch("POST", issuer + "/token", body=b"grant_type=client_credentials", headers={
            "content-type": "application/x-www-form-urlencoded",
            "authorization": "Basic ZGVtby1nYXRld2F5OmRlbW8tY2xpZW50LXNlY3JldA=="})  # demo-gateway:demo-client-secret
        token = resp.json()["access_token"]
        r = await browser.http.fetch("GET", gw.url + "/web/whoami", headers={"authorization": f"Bearer {token}"})
        assert r.status == 200 and r.json()["x-user-id"] == "demo-gateway"
    finally:
        await browser.aclose()
