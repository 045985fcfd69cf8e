"""Several auth plugins on one route (an OR), anonymous fallbacks, and acl on top, loaded by entry point."""

from __future__ import annotations

import base64

import bcrypt
from triogate.testing import IdentityProvider, UpstreamServer

PW_HASH = bcrypt.hashpw(b"pw-bob", bcrypt.gensalt(rounds=4)).decode()


def config(upstream: UpstreamServer, idp: IdentityProvider, *, anonymous: bool = False, acl: dict | None = None) -> dict:
    plugins: dict = {
        "jwt": {"jwks_uri": idp.jwks_uri, "issuer": idp.issuer, "claims_to_headers": {"sub": "x-user"}},
        "key-auth": {"anonymous": "guest"} if anonymous else {},
        "basic-auth": {},
    }
    if acl is not None:
        plugins["acl"] = acl
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "plugins": plugins}},
        "consumers": {
            "alice": {"groups": ["staff"], "credentials": {
                "key-auth": {"keys": ["sha256:8fab151ebfe45da0ce0c2a951f8bba063f8668389b08a793acf59f301a6dbd57"]}, "jwt": {"subject": "alice@idp"}}},
            "bob": {"groups": ["ops"], "credentials": {"basic-auth": {"username": "bob", "password_hash": PW_HASH}}},
            "guest": {"groups": ["public"]},
        },
    }


def basic(user: str, pw: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


async def test_first_that_authenticates_wins(gateway_factory, upstream: UpstreamServer,
                                             identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("RS256")
    gw = await gateway_factory(config(upstream, idp), autoload=True)
    r = await gw.client.get("/api", headers={"apikey": "k-alice"})
    assert r.status == 200 and r.json()["headers"]["x-consumer-username"] == ["alice"]
    r = await gw.client.get("/api", headers=basic("bob", "pw-bob"))
    assert r.status == 200 and r.json()["headers"]["x-consumer-username"] == ["bob"]
    r = await gw.client.get("/api", headers={"authorization": f"Bearer {idp.mint(sub='alice@idp')}"})
    h = r.json()["headers"]
    assert r.status == 200 and h["x-user"] == ["alice@idp"] and h["x-consumer-username"] == ["alice"]
    # a bad token next to a good key: the key authenticates
    r = await gw.client.get("/api", headers={"authorization": "Bearer junk", "apikey": "k-alice"})
    assert r.status == 200 and "authorization" not in r.json()["headers"]


async def test_none_authenticates_lists_every_scheme(gateway_factory, upstream: UpstreamServer,
                                                     identity_provider: IdentityProvider) -> None:
    gw = await gateway_factory(config(upstream, identity_provider), autoload=True)
    r = await gw.client.get("/api")
    assert r.status == 401
    assert sorted(r.headers.get_all("www-authenticate")) == sorted([
        'Bearer realm="triogate"', 'ApiKey realm="triogate"', 'Basic realm="triogate", charset="UTF-8"'])
    r = await gw.client.get("/api", headers={"apikey": "wrong"})
    assert r.status == 401
    assert len(r.headers.get_all("www-authenticate")) == 3
    assert upstream.requests == []


async def test_anonymous_never_blocks_a_real_credential(gateway_factory, upstream: UpstreamServer,
                                                        identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("ES256")
    gw = await gateway_factory(config(upstream, idp, anonymous=True), autoload=True)
    r = await gw.client.get("/api")
    assert r.status == 200 and r.json()["headers"]["x-anonymous-consumer"] == ["true"]
    # key-auth (priority 1250) grants guest first, then basic-auth (1100) authenticates bob
    r = await gw.client.get("/api", headers=basic("bob", "pw-bob"))
    h = r.json()["headers"]
    assert h["x-consumer-username"] == ["bob"] and "x-anonymous-consumer" not in h
    # an invalid credential anywhere cancels the anonymous fallback
    r = await gw.client.get("/api", headers=basic("bob", "wrong"))
    assert r.status == 401
    r = await gw.client.get("/api", headers={"authorization": "Bearer junk"})
    assert r.status == 401


async def test_acl_on_top(gateway_factory, upstream: UpstreamServer, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("RS256")
    gw = await gateway_factory(config(upstream, idp, anonymous=True, acl={"allow": ["staff", "role:admin"]}),
                               autoload=True)
    assert (await gw.client.get("/api", headers={"apikey": "k-alice"})).status == 200
    assert (await gw.client.get("/api", headers={"authorization": f"Bearer {idp.mint(roles=['admin'])}"})).status == 200
    r = await gw.client.get("/api", headers=basic("bob", "pw-bob"))
    assert r.status == 403 and r.headers["content-type"] == "application/problem+json"
    assert (await gw.client.get("/api")).status == 403  # guest is only in "public"
