"""JWKS: rotation, refresh on an unknown kid (rate limited), background refresh, outages, discovery."""

from __future__ import annotations

import trio
from jwt_support import assert_invalid_token, bearer
from triogate.testing import IdentityProvider


async def test_keys_are_cached(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri)
    for _ in range(5):
        assert (await gw.client.get("/api/x", headers=bearer(idp.mint()))).status == 200
    assert idp.calls["jwks"] == 1


async def test_rotation_through_unknown_kid(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    old = idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri, jwks_refresh_min_interval=0.2)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(old)))).status == 200
    new = idp.rotate("ES256")
    await trio.sleep(0.25)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(new)))).status == 200  # unknown kid → refetch
    assert idp.calls["jwks"] == 2
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(old))))  # unpublished → gone


async def test_unknown_kid_refresh_is_rate_limited(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("RS256")
    hidden = idp.add_key("RS256", publish=False)
    gw = await start(jwks_uri=idp.jwks_uri, jwks_refresh_min_interval=60)
    await gw.client.get("/api/x", headers=bearer(idp.mint()))
    before = idp.calls["jwks"]
    for _ in range(20):  # an attacker sending random kids cannot make us hammer the IdP
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(hidden))))
    assert idp.calls["jwks"] - before <= 1


async def test_concurrent_unknown_kids_share_one_fetch(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri, jwks_refresh_min_interval=0.01)
    await gw.client.get("/api/x", headers=bearer(idp.mint()))
    await trio.sleep(0.02)
    new = idp.rotate("RS256")
    idp.delay = 0.2
    before = idp.calls["jwks"]
    results: list[int] = []

    async def one() -> None:
        results.append((await gw.client.get("/api/x", headers=bearer(idp.mint(new)))).status)

    async with trio.open_nursery() as n:
        for _ in range(10):
            n.start_soon(one)
    assert results == [200] * 10
    assert idp.calls["jwks"] - before == 1


async def test_background_refresh_after_ttl(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    old = idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri, jwks_ttl=0.3, jwks_refresh_min_interval=3600)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(old)))).status == 200
    idp.unpublish(old)
    with trio.fail_after(5):
        while idp.calls["jwks"] < 2:
            await trio.sleep(0.05)
    await trio.sleep(0.05)
    # the refresher dropped the revoked key without any request asking for it
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(old))))


async def test_keys_kept_while_jwks_is_down(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("EdDSA")
    gw = await start(jwks_uri=idp.jwks_uri, jwks_ttl=0.2, jwks_refresh_min_interval=0.05, jwks_timeout=0.3)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid)))).status == 200
    for outage in ("error", "reset", "hang"):
        idp.outage = outage
        seen = idp.calls["jwks"]
        with trio.fail_after(5):
            while idp.calls["jwks"] < seen + 2:  # background refreshes keep failing
                await trio.sleep(0.05)
        with trio.fail_after(2):
            assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid)))).status == 200
    idp.outage = None


async def test_gateway_starts_while_jwks_is_down(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")
    idp.outage = "hang"
    with trio.fail_after(2):
        gw = await start(jwks_uri=idp.jwks_uri, jwks_timeout=0.2, jwks_refresh_min_interval=0.1)
    with trio.fail_after(2):
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(kid))))
    idp.outage = None
    await trio.sleep(0.15)
    with trio.fail_after(2):
        assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid)))).status == 200


async def test_oidc_discovery(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("PS256")
    gw = await start(issuer=idp.issuer, discovery=True)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid)))).status == 200
    assert idp.calls["discovery"] == 1 and idp.calls["jwks"] == 1
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(kid, iss="https://other"))))


async def test_discovery_issuer_mismatch_loads_no_keys(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")
    gw = await start(issuer=idp.issuer + "/", discovery=True)  # the document says idp.issuer, without the slash
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(kid, iss=idp.issuer + "/"))))
    assert idp.calls["discovery"] >= 1 and idp.calls["jwks"] == 0


async def test_instances_share_one_jwks_cache(gateway_factory, upstream, identity_provider: IdentityProvider) -> None:
    from triogate_jwt import JwtPlugin

    idp = identity_provider
    kid = idp.add_key("RS256")
    settings = {"jwks_uri": idp.jwks_uri}
    gw = await gateway_factory({
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {f"r{i}": {"paths": [f"/r{i}"], "upstream": "echo", "plugins": {"jwt": settings}} for i in range(3)},
    }, plugins={"jwt": JwtPlugin})
    for i in range(3):
        assert (await gw.client.get(f"/r{i}", headers=bearer(idp.mint(kid)))).status == 200
    assert idp.calls["jwks"] == 1


async def test_verified_tokens_are_forgotten_when_keys_change(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    old = idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri, jwks_refresh_min_interval=0.05)
    token = idp.mint(old)
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200  # now in the verified cache
    idp.rotate("RS256")
    await trio.sleep(0.06)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint()))).status == 200  # unknown kid → refetch
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(token)))  # old key gone: cache no help


async def test_verified_cache_respects_exp(start, identity_provider: IdentityProvider) -> None:
    import time

    idp = identity_provider
    idp.add_key("ES256")
    gw = await start(jwks_uri=idp.jwks_uri)
    exp = int(time.time()) + 2
    token = idp.mint(exp=exp)
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    await trio.sleep(exp - time.time() + 0.05)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(token)))
