"""Schema tests: what the jwt table accepts and rejects, with key paths."""

import pytest
import triogate
from jwt_support import SECRET
from triogate.testing import IdentityProvider, plugin_config
from triogate_jwt import JwtPlugin


def test_defaults_are_strict() -> None:
    c = plugin_config(JwtPlugin, {"secret": SECRET})
    assert c.required_claims == ["exp"]
    assert c.leeway == 0.0
    assert c.header_names == ["authorization"]
    assert c.cookie_names == [] and c.query_params == []
    assert c.strip_credential is True
    assert c.algorithms == []


@pytest.mark.parametrize("raw, message", [
    ({"secret": SECRET, "algorithms": ["none"]}, '"none" is never accepted'),
    ({"secret": SECRET, "algorithms": ["NONE"]}, '"none" is never accepted'),
    ({"secret": SECRET, "algorithms": ["HS999"]}, "unknown algorithm"),
    ({"jwks_uri": "ftp://x/jwks"}, "jwks_uri: expected an http(s) URL"),
    ({"discovery": True}, "discovery: needs issuer"),
    ({"discovery": True, "issuer": "https://id.example", "jwks_uri": "https://id.example/k"}, "not both"),
    ({"secret": SECRET, "jwks_ttl": 0}, "jwks_ttl"),
    ({"secret": SECRET, "leeway": -1}, "leeway"),
    ({"secret": SECRET, "header_names": [], "cookie_names": [], "query_params": []}, "at least one place"),
    ({"secret": SECRET, "claims_to_headers": {"sub": "bad header"}}, "claims_to_headers"),
    ({"secret": SECRET, "realm": 'a"b'}, "realm"),
])
def test_rejected(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(JwtPlugin, raw, path="routes.api.plugins.jwt")
    assert message in str(err.value), err.value.errors
    assert all(e.startswith("routes.api.plugins.jwt") for e in err.value.errors)


def test_wrong_type_and_unknown_key() -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(JwtPlugin, {"secret": SECRET, "audience": "api", "nope": 1}, path="plugins.jwt")
    errors = err.value.errors
    assert any(e.startswith("plugins.jwt.audience:") for e in errors), errors
    assert any(e.startswith("plugins.jwt.nope: unknown key") for e in errors), errors


async def start_with(gateway_factory, settings, consumers=None):
    return await gateway_factory({"routes": {"r": {"paths": ["/"], "plugins": {"jwt": settings}}},
                                  "consumers": consumers or {}}, plugins={"jwt": JwtPlugin})


@pytest.mark.parametrize("settings, message", [
    ({}, "no keys"),  # checked at load: consumers' own keys count as keys (test_consumer_keys.py)
    ({"secret": "short"}, "at least 32 bytes"),
    ({"secret": SECRET, "algorithms": ["RS256"]}, "no configured key can verify RS256"),
    ({"secret": SECRET, "algorithms": ["HS512"]}, "no configured key can verify HS512"),
    ({"public_keys": ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"]}, "public_keys[0]"),
    ({"secret": SECRET, "anonymous": "ghost"}, "no consumer named 'ghost'"),
])
async def test_rejected_at_load(gateway_factory, settings, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await start_with(gateway_factory, settings)
    assert any(e.startswith("routes.r.plugins.jwt") and message in e for e in err.value.errors), err.value.errors


async def test_bad_consumer_credentials(gateway_factory) -> None:
    consumers = {"a": {"credentials": {"jwt": {"subject": "x"}}}, "b": {"credentials": {"jwt": {"subject": "x"}}}}
    with pytest.raises(triogate.ConfigError) as err:
        await start_with(gateway_factory, {"secret": SECRET}, consumers)
    assert "already belongs to consumer 'a'" in str(err.value)
    with pytest.raises(triogate.ConfigError) as err:
        await start_with(gateway_factory, {"secret": SECRET}, {"a": {"credentials": {"jwt": {"sub": "x"}}}})
    assert "consumers.a.credentials.jwt" in str(err.value)


async def test_pem_keys_decide_algorithms(gateway_factory, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    rsa = idp.keys[idp.add_key("RS256")].public_pem()
    ec = idp.keys[idp.add_key("ES384")].public_pem()
    gw = await start_with(gateway_factory, {"public_keys": [rsa, ec]})
    [plugin] = [p for p in gw.gateway.pipeline.instances if isinstance(p, JwtPlugin)]
    assert plugin.allowed == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES384"}
    gw = await start_with(gateway_factory, {"secret": "k" * 48})
    [plugin] = [p for p in gw.gateway.pipeline.instances if isinstance(p, JwtPlugin)]
    assert plugin.allowed == {"HS256", "HS384"}
