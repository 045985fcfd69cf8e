"""What the upstream learns: claims as headers (never spoofable), consumers, anonymous access."""

from __future__ import annotations

import pytest
import triogate
from jwt_support import bearer, config
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_jwt import JwtPlugin


@pytest.fixture
def idp(identity_provider: IdentityProvider) -> IdentityProvider:
    identity_provider.add_key("ES384")
    return identity_provider


async def test_claims_to_headers(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, claims_to_headers={
        "sub": "X-User", "tenant.id": "X-Tenant", "groups": "X-Groups", "email_verified": "X-Verified",
        "missing": "X-Missing", "evil": "X-Evil"})
    token = idp.mint(sub="alice", tenant={"id": "t-1"}, groups=["a", "b"], email_verified=True, evil="x\r\nInjected: 1")
    h = (await gw.client.get("/api/x", headers=bearer(token))).json()["headers"]
    assert h["x-user"] == ["alice"]
    assert h["x-tenant"] == ["t-1"]
    assert h["x-groups"] == ["a,b"]
    assert h["x-verified"] == ["true"]
    assert "x-missing" not in h and "x-evil" not in h and "injected" not in h


async def test_spoofed_claim_headers_are_dropped(start, idp: IdentityProvider, upstream: UpstreamServer) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, claims_to_headers={"sub": "x-user", "missing": "x-role"})
    spoof = {"X-User": "admin", "x-role": "root"}
    h = (await gw.client.get("/api/x", headers={**spoof, **bearer(idp.mint(sub="bob"))})).json()["headers"]
    assert h["x-user"] == ["bob"]
    assert "x-role" not in h


async def test_spoofed_headers_dropped_when_another_plugin_authenticates(gateway_factory, upstream: UpstreamServer,
                                                                         idp: IdentityProvider) -> None:
    class Trusting(triogate.Plugin):
        priority = 1500  # runs before jwt and authenticates by itself

        @triogate.hookimpl
        async def auth(self, ctx: triogate.Context) -> None:
            if ctx.request.headers.get("x-let-me-in"):
                ctx.principal = triogate.Principal(consumer="svc", method="trusting")

    cfg = config(upstream, jwks_uri=idp.jwks_uri, claims_to_headers={"sub": "x-user"})
    cfg["routes"]["api"]["plugins"]["trusting"] = {}
    gw = await gateway_factory(cfg, plugins={"jwt": JwtPlugin, "trusting": Trusting})
    r = await gw.client.get("/api/x", headers={"x-let-me-in": "1", "x-user": "admin"})
    assert r.status == 200
    assert "x-user" not in r.json()["headers"]


async def test_consumer_mapping_and_principal(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider) -> None:
    seen: list[triogate.Principal] = []

    class Spy(triogate.Plugin):
        priority = 1

        @triogate.hookimpl
        async def transform(self, ctx: triogate.Context) -> None:
            seen.append(ctx.principal)

    cfg = config(upstream, {"alice": {"groups": ["staff"], "credentials": {"jwt": {"subject": ["alice@idp", "a2"]}}}},
                 jwks_uri=idp.jwks_uri)
    cfg["routes"]["api"]["plugins"]["spy"] = {}
    gw = await gateway_factory(cfg, plugins={"jwt": JwtPlugin, "spy": Spy})
    token = idp.mint(sub="alice@idp", scope="read write")
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(sub="stranger")))).status == 200
    p, q = seen
    assert (p.consumer, p.credential, p.groups, p.scopes, p.method, p.anonymous) == (
        "alice", "alice@idp", frozenset({"staff"}), frozenset({"read", "write"}), "jwt", False)
    assert p.claims["sub"] == "alice@idp"
    assert p.credential != token
    assert (q.consumer, q.credential, q.groups) == (None, "stranger", frozenset())


async def test_anonymous(start, idp: IdentityProvider) -> None:
    gw = await start({"guest": {"groups": ["public"]}}, jwks_uri=idp.jwks_uri, anonymous="guest",
                     claims_to_headers={"sub": "x-user"})
    r = await gw.client.get("/api/x", headers={"x-user": "admin"})
    assert r.status == 200
    assert "x-user" not in r.json()["headers"]
    r = await gw.client.get("/api/x", headers=bearer(idp.mint(sub="carol")))
    assert r.json()["headers"]["x-user"] == ["carol"]
