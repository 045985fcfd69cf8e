"""Where the token is taken from (header → cookie → query) and that it is stripped before forwarding."""

from __future__ import annotations

import pytest
from jwt_support import assert_invalid_token, bearer
from triogate.testing import IdentityProvider, UpstreamServer


@pytest.fixture
def idp(identity_provider: IdentityProvider) -> IdentityProvider:
    identity_provider.add_key("RS256")
    return identity_provider


async def test_each_location(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, header_names=["authorization", "x-token"], cookie_names=["session"],
                     query_params=["access_token"])
    token = idp.mint()
    r = await gw.client.get("/api/x", headers=bearer(token))
    assert r.status == 200 and "authorization" not in r.json()["headers"]
    r = await gw.client.get("/api/x", headers={"x-token": token})
    assert r.status == 200 and "x-token" not in r.json()["headers"]
    r = await gw.client.get("/api/x", headers={"cookie": f"theme=dark; session={token}; lang=en"})
    assert r.status == 200
    assert r.json()["headers"]["cookie"] == ["theme=dark; lang=en"]
    r = await gw.client.get(f"/api/x?a=1&access_token={token}&b=%20two")
    assert r.status == 200
    assert r.json()["query"] == "a=1&b=%20two"


async def test_order_is_header_cookie_query(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, cookie_names=["session"], query_params=["jwt"])
    good, bad = idp.mint(), "not-a-token"
    assert (await gw.client.get(f"/api/x?jwt={bad}", headers={**bearer(good), "cookie": f"session={bad}"})).status == 200
    assert_invalid_token(await gw.client.get(f"/api/x?jwt={good}", headers={**bearer(bad), "cookie": f"session={good}"}))
    assert (await gw.client.get(f"/api/x?jwt={bad}", headers={"cookie": f"session={good}"})).status == 200
    assert_invalid_token(await gw.client.get(f"/api/x?jwt={good}", headers={"cookie": f"session={bad}"}))
    assert (await gw.client.get(f"/api/x?jwt={good}")).status == 200


async def test_unconfigured_locations_are_ignored(start, idp: IdentityProvider, upstream: UpstreamServer) -> None:
    gw = await start(jwks_uri=idp.jwks_uri)
    token = idp.mint()
    assert (await gw.client.get(f"/api/x?jwt={token}")).status == 401
    assert (await gw.client.get("/api/x", headers={"cookie": f"jwt={token}"})).status == 401
    assert upstream.requests == []


async def test_strip_can_be_disabled(start, idp: IdentityProvider) -> None:
    gw = await start(jwks_uri=idp.jwks_uri, strip_credential=False, query_params=["jwt"])
    token = idp.mint()
    assert (await gw.client.get("/api/x", headers=bearer(token))).json()["headers"]["authorization"] == [f"Bearer {token}"]
    assert (await gw.client.get(f"/api/x?jwt={token}")).json()["query"] == f"jwt={token}"


async def test_invalid_token_is_stripped_too(start, idp: IdentityProvider) -> None:
    """With anonymous access allowed, a bad token still never reaches the upstream."""
    gw = await start({"guest": {}}, jwks_uri=idp.jwks_uri, anonymous="guest")
    r = await gw.client.get("/api/x")
    assert r.status == 200
    r = await gw.client.get("/api/x", headers=bearer("junk"))
    assert_invalid_token(r)  # a presented bad credential is a 401, not anonymous access
