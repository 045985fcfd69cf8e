"""Claim checks: exp/nbf/iat with leeway, iss, aud, required claims, lifetime, scopes and roles."""

from __future__ import annotations

import time

import pytest
from jwt_support import assert_invalid_token, bearer
from triogate.testing import IdentityProvider, UpstreamServer


@pytest.fixture
def idp(identity_provider: IdentityProvider) -> IdentityProvider:
    identity_provider.add_key("ES256")
    return identity_provider


async def test_time_claims(start, idp: IdentityProvider) -> None:
    now = int(time.time())
    gw = await start(jwks_uri=idp.jwks_uri)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint()))).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(exp=now - 5))))       # expired
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(nbf=now + 60))))      # not yet valid
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(iat=now + 60))))      # issued in the future
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(exp="tomorrow"))))    # not a number


async def test_leeway(start, idp: IdentityProvider) -> None:
    now = int(time.time())
    gw = await start(jwks_uri=idp.jwks_uri, leeway=30)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(exp=now - 10)))).status == 200
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(nbf=now + 10)))).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(exp=now - 60))))


async def test_issuer(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, issuer=idp.issuer)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint()))).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(iss="https://evil.example"))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(iss=None))))


async def test_audience_string_or_list(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, audience=["orders", "billing"])
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(aud="orders")))).status == 200
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(aud=["other", "billing"])))).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(aud="other"))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(aud=["x", "y"]))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint())))  # no aud at all


async def test_aud_present_but_not_configured(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(aud="anything")))).status == 200


async def test_required_claims(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, required_claims=["exp", "sub", "tenant"])
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(tenant="t1")))).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint())))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(tenant="t1", exp=None))))


async def test_exp_required_by_default(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(exp=None))))


async def test_max_lifetime(start, idp: IdentityProvider) -> None:
    now = int(time.time())
    gw = await start(jwks_uri=idp.jwks_uri, max_lifetime=600)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(iat=now, exp=now + 600)))).status == 200
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(iat=now, exp=now + 3600))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(iat=None, exp=now + 3600))))


ABSURD_TIMES = [10**20, 1e300, 10**400, -10**400, -1, 1.5e11 * 10, 253402300800, 2**63]


@pytest.mark.parametrize("settings", [{}, {"max_lifetime": 600}, {"verified_cache_size": 0}, {"leeway": 30}])
@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
async def test_absurd_time_claims_are_invalid_tokens_not_errors(start, idp: IdentityProvider, name: str,
                                                                  settings: dict) -> None:
    """A validly signed token whose exp/nbf/iat is no real date (beyond year 9999, negative,
    10**400 which overflows float arithmetic) is a 401 invalid_token, never a 500."""
    gw = await start(jwks_uri=idp.jwks_uri, **settings)
    for value in ABSURD_TIMES:
        extra = {"iat": None} if name == "exp" else {}  # exp - now instead of exp - iat for max_lifetime
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(**{name: value, **extra}))))
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint()))).status == 200


async def test_time_claims_up_to_year_9999_are_dates(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(exp=253402300799)))).status == 200
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(exp=time.time() + 60.5, nbf=0, iat=0.5)))).status == 200


async def test_scopes(start, idp: IdentityProvider, upstream: UpstreamServer) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, scopes=["orders:read", "orders:write"])
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(scope="orders:read orders:write x")))).status == 200
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(scp=["orders:write", "orders:read"])))).status == 200
    seen = len(upstream.requests)
    r = await gw.client.get("/api/x", headers=bearer(idp.mint(scope="orders:read")))
    assert r.status == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == \
        'Bearer realm="triogate", error="insufficient_scope", scope="orders:read orders:write"'
    assert len(upstream.requests) == seen


async def test_roles(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, roles=["admin", "ops"], roles_claim="realm_access.roles")
    ok = idp.mint(realm_access={"roles": ["viewer", "ops"]})
    assert (await gw.client.get("/api/x", headers=bearer(ok))).status == 200
    r = await gw.client.get("/api/x", headers=bearer(idp.mint(realm_access={"roles": ["viewer"]})))
    assert r.status == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint()))).status == 403
