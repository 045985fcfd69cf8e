"""Behaviour: client authentication, active/inactive, scope/audience/client checks, forwarded fields."""

from __future__ import annotations

import pytest
import triogate
from triogate.testing import IdentityProvider, UpstreamServer

from introspection_support import assert_invalid_token, bearer


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_authentication_and_hint(method, start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(auth_method=method)
    token = idp.issue_opaque()
    r = await gw.client.get("/api/x", headers=bearer(token))
    assert r.status == 200, r.content
    assert "authorization" not in r.json()["headers"]
    [form] = idp.introspections
    assert form["auth"] == method
    assert form["token"] == token and form["token_type_hint"] == "access_token"


async def test_no_hint_when_unset(start, identity_provider: IdentityProvider) -> None:
    gw = await start(token_type_hint=None)
    await gw.client.get("/api/x", headers=bearer(identity_provider.issue_opaque()))
    assert "token_type_hint" not in identity_provider.introspections[0]


async def test_inactive_unknown_and_expired(start, identity_provider: IdentityProvider, upstream: UpstreamServer) -> None:
    idp = identity_provider
    gw = await start()
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(active=False))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer("never-issued")))
    # a server that says active for a token whose exp has passed is not believed
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(exp=1000))))
    r = await gw.client.get("/api/x")
    assert r.status == 401 and r.headers["www-authenticate"] == 'Bearer realm="triogate"'
    assert upstream.requests == []


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
async def test_absurd_time_fields_are_not_believed(start, identity_provider: IdentityProvider, upstream: UpstreamServer,
                                                   name: str) -> None:
    """An "active" answer whose exp/nbf/iat is no date (10**400 overflows float arithmetic, NaN
    compares false with everything) is an invalid token, never a 500 and never cached as active."""
    idp = identity_provider
    gw = await start()
    for value in (10**400, -10**400, 1e300, float("nan"), float("inf"), -1, 253402300800, "tomorrow", True):
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(**{name: value}))))
    assert upstream.requests == []
    assert (await gw.client.get("/api/x", headers=bearer(idp.issue_opaque()))).status == 200


async def test_scopes(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(scopes=["orders:read"])
    assert (await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(scope="a orders:read")))).status == 200
    r = await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(scope="a")))
    assert r.status == 403
    assert r.headers["www-authenticate"] == 'Bearer realm="triogate", error="insufficient_scope", scope="orders:read"'
    assert r.headers["content-type"] == "application/problem+json"


async def test_audience_client_and_issuer(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(audience=["orders"], client_ids=["web", "cli"], issuer="https://as.example")
    ok = dict(aud=["x", "orders"], client_id="web", iss="https://as.example")
    assert (await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(**ok)))).status == 200
    for bad in ({"aud": "billing"}, {"aud": None}, {"client_id": "evil"}, {"iss": "https://evil"}):
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(**{**ok, **bad}))))


async def test_forward_headers_and_spoofing(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(forward_headers={"sub": "x-user", "client_id": "x-client-id", "scope": "x-scope",
                                      "username": "x-username"})
    spoof = {"x-user": "admin", "x-username": "root"}
    h = (await gw.client.get("/api/x", headers={**spoof, **bearer(idp.issue_opaque(sub="u-7", scope="a b"))})).json()["headers"]
    assert h["x-user"] == ["u-7"] and h["x-client-id"] == ["app-1"] and h["x-scope"] == ["a b"]
    assert "x-username" not in h  # the server sent no username, and the client's copy was dropped


async def test_principal(gateway_factory, upstream: UpstreamServer, identity_provider: IdentityProvider) -> None:
    from triogate_oauth2_introspection import IntrospectionPlugin

    from introspection_support import config

    seen = []

    class Spy(triogate.Plugin):
        priority = 1

        @triogate.hookimpl
        async def transform(self, ctx):
            seen.append(ctx.principal)

    cfg = config(upstream, identity_provider)
    cfg["routes"]["api"]["plugins"]["spy"] = {}
    gw = await gateway_factory(cfg, plugins={"oauth2-introspection": IntrospectionPlugin, "spy": Spy})
    token = identity_provider.issue_opaque(sub="u-1", scope="read write")
    await gw.client.get("/api/x", headers=bearer(token))
    [p] = seen
    assert (p.credential, p.scopes, p.method, p.anonymous) == ("u-1", frozenset({"read", "write"}),
                                                              "oauth2-introspection", False)
    assert p.claims["client_id"] == "app-1"


async def test_anonymous(start, identity_provider: IdentityProvider) -> None:
    gw = await start({"guest": {}}, anonymous="guest")
    assert (await gw.client.get("/api/x")).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(identity_provider.issue_opaque(active=False))))


async def test_oversized_token_is_not_looked_up(start, identity_provider: IdentityProvider) -> None:
    gw = await start(max_token_bytes=100)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer("t" * 101)))
    assert identity_provider.calls["introspect"] == 0
