"""Signature checks: every algorithm family, and the classic attacks (none, key confusion, tampering)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
import trio
from jwt_support import SECRET, assert_invalid_token, bearer
from triogate.testing import IdentityProvider, UpstreamServer

FAMILIES = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512", "EdDSA"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, sign) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.mark.parametrize("alg", FAMILIES)
async def test_every_family_through_jwks(alg, start, identity_provider: IdentityProvider,
                                         upstream: UpstreamServer) -> None:
    idp = identity_provider
    kid = idp.add_key(alg, publish=True)
    gw = await start(jwks_uri=idp.jwks_uri, issuer=idp.issuer)
    r = await gw.client.get("/api/x", headers=bearer(idp.mint(kid, sub="alice")))
    assert r.status == 200, r.content
    assert "authorization" not in r.json()["headers"]  # stripped before forwarding
    # the same token with one signature byte changed is rejected
    token = idp.mint(kid)
    head, _, sig = token.rpartition(".")
    tampered = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(tampered)))


@pytest.mark.parametrize("alg", ["RS256", "PS512", "ES256", "ES512", "EdDSA"])
async def test_every_asymmetric_family_from_pem(alg, start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key(alg)
    gw = await start(public_keys=[idp.keys[kid].public_pem()])
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid, include_kid=False)))).status == 200
    # another key of the same type does not verify it
    other = idp.add_key(alg)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(other))))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_secret(alg, start, identity_provider: IdentityProvider) -> None:
    secret = "k" * 64
    gw = await start(secret=secret)
    token = jwt.encode({"sub": "a", "exp": 2**33}, secret, algorithm=alg)
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    wrong = jwt.encode({"sub": "a", "exp": 2**33}, "x" * 64, algorithm=alg)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(wrong)))


async def test_alg_none_is_never_accepted(start, identity_provider: IdentityProvider) -> None:
    gw = await start(secret=SECRET, jwks_uri=identity_provider.jwks_uri)
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "typ": "JWT"}, {"sub": "admin", "exp": 2**33}, lambda _: b"")
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(token)))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(
        jwt.encode({"sub": "admin", "exp": 2**33}, None, algorithm="none"))))


async def test_hs_token_signed_with_the_rsa_public_key(start, identity_provider: IdentityProvider,
                                                       upstream: UpstreamServer) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")
    pem = idp.keys[kid].public_pem().encode()

    def hs256(data: bytes) -> bytes:
        return hmac.new(pem, data, hashlib.sha256).digest()

    payload = {"sub": "admin", "exp": 2**33, "iss": idp.issuer}
    # the RSA key comes from a PEM, then from the JWKS (with and without a matching kid), then both plus a secret
    for settings in ({"public_keys": [pem.decode()]}, {"jwks_uri": idp.jwks_uri},
                     {"jwks_uri": idp.jwks_uri, "public_keys": [pem.decode()], "secret": SECRET}):
        gw = await start(**settings)
        for header in ({"alg": "HS256"}, {"alg": "HS256", "kid": kid}):
            assert_invalid_token(await gw.client.get("/api/x", headers=bearer(forge(header, payload, hs256))))
    assert upstream.requests == []


async def test_allow_list_limits_what_keys_could_verify(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")
    gw = await start(public_keys=[idp.keys[kid].public_pem()], algorithms=["PS256"])
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(kid))))
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid, alg="PS256")))).status == 200


async def test_jwk_alg_pins_the_algorithm(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")  # published with "alg": "RS256"
    gw = await start(jwks_uri=idp.jwks_uri)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(kid, alg="RS512"))))


async def test_unknown_crit_is_rejected(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("ES256")
    gw = await start(jwks_uri=idp.jwks_uri)
    token = idp.mint(kid, headers={"crit": ["exp-ext"], "exp-ext": 1})
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(token)))


async def test_unknown_kid_and_garbage(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("RS256")
    hidden = idp.add_key("RS256", publish=False)
    gw = await start(jwks_uri=idp.jwks_uri)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint(hidden))))
    for junk in ("abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30", "x" * 50):
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer(junk)))


async def test_oversized_token_is_rejected_unparsed(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri, max_token_bytes=2048)
    assert (await gw.client.get("/api/x", headers=bearer(idp.mint(kid)))).status == 200
    big = idp.mint(kid, padding="p" * 4000)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(big)))


async def test_error_body_tells_nothing(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("RS256")
    gw = await start(jwks_uri=idp.jwks_uri, issuer=idp.issuer)
    expired = await gw.client.get("/api/x", headers=bearer(idp.mint(kid, exp=1000)))
    wrong_iss = await gw.client.get("/api/x", headers=bearer(idp.mint(kid, iss="https://evil")))
    for r in (expired, wrong_iss):
        assert_invalid_token(r)
        body = r.json()
        body.pop("request_id")
        assert body == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                        "detail": "authentication required"}


async def test_no_token_gets_a_plain_challenge(start, upstream: UpstreamServer) -> None:
    gw = await start(secret=SECRET)
    r = await gw.client.get("/api/x")
    assert r.status == 401
    assert r.headers.get_all("www-authenticate") == ['Bearer realm="triogate"']
    r = await gw.client.get("/api/x", headers={"authorization": "Basic YTpi"})
    assert r.headers.get_all("www-authenticate") == ['Bearer realm="triogate"']
    assert upstream.requests == []


async def test_access_log_gets_the_reason_never_the_token(gateway_factory, upstream: UpstreamServer,
                                                          identity_provider: IdentityProvider) -> None:
    import triogate

    from triogate_jwt import JwtPlugin

    from jwt_support import config

    extras: list[dict] = []

    class Spy(triogate.Plugin):
        @triogate.hookimpl
        async def log(self, ctx: triogate.Context) -> None:
            extras.append(dict(ctx.log_extra))

    idp = identity_provider
    kid = idp.add_key("RS256")
    cfg = config(upstream, jwks_uri=idp.jwks_uri)
    cfg["routes"]["api"]["plugins"]["spy"] = {}
    gw = await gateway_factory(cfg, plugins={"jwt": JwtPlugin, "spy": Spy})
    token = idp.mint(kid, exp=1000)
    await gw.client.get("/api/x", headers=bearer(token))
    await gw.client.get("/api/x", headers=bearer(token[:-3] + "AAA"))
    with trio.fail_after(2):
        while len(extras) < 2:  # the log hook runs after the response is sent
            await trio.sleep(0.01)
    assert [e["authn"] for e in extras] == ["jwt:expired", "jwt:bad_signature"]
    assert token not in repr(extras)
