"""Consumers' own keys ([consumers.<n>.credentials.jwt] keys), Kong style: real tokens, real gateway."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
import triogate
from jwt_support import assert_invalid_token, bearer, config
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_acl import AclPlugin
from triogate_jwt import JwtPlugin

SECRET_A = "alice-secret-" + "a" * 32
SECRET_B = "bob-secret-" + "b" * 32


def hs(secret: str, kid: str | None, **claims: Any) -> str:
    now = int(time.time())
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode({"sub": "someone", "iat": now, "exp": now + 300, **claims}, secret, algorithm="HS256",
                      headers=headers)


@pytest.fixture
def consumers(identity_provider: IdentityProvider) -> dict[str, Any]:
    idp = identity_provider
    idp.add_key("ES256", kid="alice-ec", publish=False)
    idp.add_key("RS256", kid="bob-rsa", publish=False)
    return {
        "alice": {"groups": ["staff"], "custom_id": "A-1", "credentials": {"jwt": {"keys": [
            {"kid": "alice-hs", "secret": SECRET_A},
            {"kid": "alice-ec", "public_key": idp.keys["alice-ec"].public_pem()},
        ]}}},
        "bob": {"groups": ["partners"], "credentials": {"jwt": {"keys": [
            {"kid": "bob-rsa", "public_key": idp.keys["bob-rsa"].public_pem()},
            {"kid": "bob-hs", "secret": SECRET_B},
        ]}}},
    }


async def test_consumer_keys_alone(start, consumers, identity_provider: IdentityProvider,
                                   upstream: UpstreamServer) -> None:
    """No plugin-level key: each token authenticates as the consumer whose key verified it."""
    idp = identity_provider
    gw = await start(consumers)  # no secret, public_keys or jwks_uri

    async def who(token: str, **headers: str) -> str:
        r = await gw.client.get("/api/x", headers={**headers, **bearer(token)})
        assert r.status == 200, r.content
        h = r.json()["headers"]
        return h["x-consumer-username"][0] + "|" + ",".join(h.get("x-consumer-custom-id", []))

    assert await who(hs(SECRET_A, "alice-hs")) == "alice|A-1"
    assert await who(idp.mint("alice-ec", sub="whatever")) == "alice|A-1"
    assert await who(idp.mint("bob-rsa")) == "bob|"
    assert await who(hs(SECRET_B, "bob-hs"), **{"x-consumer-username": "alice"}) == "bob|"  # spoof dropped
    sent = len(upstream.requests)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "nobody"))))  # unknown kid
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, None))))  # no kid
    # signed with alice's secret, naming bob's keys: bob's HS key fails the signature, bob's RSA key the alg
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "bob-hs"))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "bob-rsa"))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint("alice-ec", headers={"kid": "bob-rsa"}))))
    unsigned = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none", headers={"kid": "bob-hs"})
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(unsigned)))
    assert len(upstream.requests) == sent


async def test_principal_and_acl_groups(gateway_factory, upstream: UpstreamServer, consumers) -> None:
    seen: list[triogate.Principal] = []

    class Spy(triogate.Plugin):
        priority = 1

        @triogate.hookimpl
        async def transform(self, ctx: triogate.Context) -> None:
            seen.append(ctx.principal)

    cfg = config(upstream, consumers)
    cfg["routes"]["api"]["plugins"].update({"acl": {"allow": ["staff"]}, "spy": {}})
    gw = await gateway_factory(cfg, plugins={"jwt": JwtPlugin, "acl": AclPlugin, "spy": Spy})
    assert (await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "alice-hs", sub="al")))).status == 200
    r = await gw.client.get("/api/x", headers=bearer(hs(SECRET_B, "bob-hs")))
    assert r.status == 403, r.content
    [p] = seen
    assert (p.consumer, p.credential, p.groups, p.method, p.anonymous) == (
        "alice", "alice/jwt/kid:alice-hs", frozenset({"staff"}), "jwt", False)
    assert p.claims["sub"] == "al"


async def test_consumer_key_wins_over_jwks_and_subject(start, identity_provider: IdentityProvider) -> None:
    """A kid both in the JWKS and a consumer's: only the consumer's key verifies it (documented)."""
    idp = identity_provider
    idp.add_key("RS256", kid="shared")  # published in the JWKS
    idp.add_key("RS256", kid="idp-own")
    consumers = {
        "dave": {"credentials": {"jwt": {"keys": [{"kid": "shared", "secret": SECRET_A}]}}},
        "erin": {"credentials": {"jwt": {"subject": "erin@idp"}}},
    }
    gw = await start(consumers, jwks_uri=idp.jwks_uri, issuer=idp.issuer)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint("shared"))))
    r = await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "shared", iss=idp.issuer, sub="erin@idp")))
    assert r.json()["headers"]["x-consumer-username"] == ["dave"]  # the key decides, not the subject
    r = await gw.client.get("/api/x", headers=bearer(idp.mint("idp-own", sub="erin@idp")))
    assert r.json()["headers"]["x-consumer-username"] == ["erin"]  # subject mapping still works
    # the plugin-level issuer check applies to consumer keys looked up by kid
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "shared", iss="elsewhere"))))


async def test_keys_by_issuer(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    idp.add_key("EdDSA", kid="carol-ed", publish=False)
    idp.add_key("RS256", kid="idp-main")
    consumers = {"carol": {"credentials": {"jwt": {"keys": [
        {"iss": "carol-app", "public_key": idp.keys["carol-ed"].public_pem()},
        {"kid": "carol-hs", "secret": SECRET_A},  # keyed by kid: not used where keys go by iss
    ]}}}}
    gw = await start(consumers, key_claim_name="iss", jwks_uri=idp.jwks_uri, issuer=idp.issuer)
    r = await gw.client.get("/api/x", headers=bearer(idp.mint("carol-ed", iss="carol-app")))
    assert r.json()["headers"]["x-consumer-username"] == ["carol"]
    r = await gw.client.get("/api/x", headers=bearer(idp.mint("idp-main")))  # the IdP's own token: no consumer
    assert r.status == 200 and "x-consumer-username" not in r.json()["headers"]
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(idp.mint("idp-main", iss="carol-app"))))
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(hs(SECRET_A, "carol-hs", iss="nobody"))))


async def load(gateway_factory, consumers: dict[str, Any], **settings: Any) -> list[str]:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"routes": {"r": {"paths": ["/"], "plugins": {"jwt": settings}}}, "consumers": consumers},
                              plugins={"jwt": JwtPlugin})
    return err.value.errors


def keys(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"credentials": {"jwt": {"keys": list(entries)}}}


async def test_duplicate_kid_is_refused(gateway_factory) -> None:
    errors = await load(gateway_factory, {"a": keys({"kid": "k1", "secret": SECRET_A}),
                                          "b": keys({"kid": "k2", "secret": SECRET_B}, {"kid": "k1", "secret": SECRET_B})})
    assert any("consumers.b.credentials.jwt.keys[1].kid: 'k1' is already a key of consumer 'a'" in e
               for e in errors), errors
    errors = await load(gateway_factory, {"a": keys({"iss": "x", "secret": SECRET_A}, {"iss": "x", "secret": SECRET_B})},
                        key_claim_name="iss")
    assert any("consumers.a.credentials.jwt.keys[1].iss: 'x' is already a key of consumer 'a'" in e for e in errors)


@pytest.mark.parametrize("entry, message", [
    ({"secret": SECRET_A}, "keys[0]: expected exactly one of kid or iss"),
    ({"kid": "k", "iss": "i", "secret": SECRET_A}, "keys[0]: expected exactly one of kid or iss"),
    ({"kid": "k"}, "keys[0]: expected exactly one of secret or public_key"),
    ({"kid": "k", "secret": "short"}, "keys[0].secret: expected at least 32 bytes"),
    ({"kid": "k", "public_key": "-----BEGIN PUBLIC KEY-----\nno\n-----END PUBLIC KEY-----"},
     "keys[0].public_key: not a PEM public key"),
    ({"kid": "", "secret": SECRET_A}, "keys[0].kid: expected a non-empty string"),
    ({"kid": "k", "secret": SECRET_A, "alg": "HS256"}, "keys[0].alg: unknown key"),
    ("k", "keys[0]: expected a table"),
])
async def test_bad_consumer_key(gateway_factory, entry, message) -> None:
    errors = await load(gateway_factory, {"a": keys(entry)})
    assert any(e.startswith("routes.r.plugins.jwt") and "consumers.a.credentials.jwt." + message in e
               for e in errors), errors


async def test_algorithms_bound_to_consumer_keys(gateway_factory) -> None:
    errors = await load(gateway_factory, {"a": keys({"kid": "k", "secret": SECRET_A})}, algorithms=["RS256"])
    assert any("no configured key can verify RS256" in e for e in errors), errors
    errors = await load(gateway_factory, {"a": {"credentials": {"jwt": {"keys": {"kid": "k"}}}}})
    assert any("consumers.a.credentials.jwt.keys: expected a list" in e for e in errors), errors


def test_duplicate_kid_fails_triogate_check(tmp_path) -> None:
    """The CLI: exit 2 and the key path, no traceback."""
    (tmp_path / "gateway.toml").write_text(f"""
[routes.partners]
paths = ["/p"]
[routes.partners.plugins.jwt]

[[consumers.acme.credentials.jwt.keys]]
kid = "k1"
secret = "{SECRET_A}"

[[consumers.globex.credentials.jwt.keys]]
kid = "k1"
secret = "{SECRET_B}"
""")
    proc = subprocess.run([sys.executable, "-m", "triogate", "check", "-c", "gateway.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ("routes.partners.plugins.jwt: consumers.globex.credentials.jwt.keys[0].kid: 'k1' is already a key "
            "of consumer 'acme'") in proc.stderr
    assert "Traceback" not in proc.stderr
