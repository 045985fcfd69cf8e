"""Schema tests for basic-auth and its consumer credentials (hashes only)."""

import pytest
import triogate
from triogate.testing import plugin_config

from triogate_basic_auth import BasicAuthPlugin

from basic_auth_support import BCRYPT_HASH, CONSUMERS, config


def test_defaults() -> None:
    c = plugin_config(BasicAuthPlugin, {})
    assert (c.realm, c.strip_credential, c.anonymous, c.cache_ttl) == ("triogate", True, None, 60.0)


@pytest.mark.parametrize("raw, message", [
    ({"cache_ttl": -1}, "cache_ttl"),
    ({"max_concurrent_checks": 0}, "max_concurrent_checks"),
    ({"realm": 'x"y'}, "realm"),
    ({"realm": 1}, "realm"),
    ({"password": "x"}, "password: unknown key"),
])
def test_rejected(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(BasicAuthPlugin, raw, path="plugins.basic-auth")
    assert message in str(err.value), err.value.errors


@pytest.mark.parametrize("credential, message", [
    ({"username": "a", "password_hash": "hunter2"}, "plain-text passwords are not accepted"),
    ({"username": "a", "password_hash": "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="}, "plain-text passwords are not accepted"),
    ({"username": "a", "password": "hunter2"}, "expected a table with username"),
    ({"username": "a:b", "password_hash": BCRYPT_HASH}, "without ':'"),
])
async def test_bad_credentials(gateway_factory, upstream, credential, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(config(upstream, {"x": {"credentials": {"basic-auth": credential}}}),
                              plugins={"basic-auth": BasicAuthPlugin})
    assert any("consumers.x.credentials.basic-auth" in e and message in e for e in err.value.errors), err.value.errors


async def test_duplicate_username_and_unknown_anonymous(gateway_factory, upstream) -> None:
    dup = {"a": {"credentials": {"basic-auth": {"username": "u", "password_hash": BCRYPT_HASH}}},
           "b": {"credentials": {"basic-auth": {"username": "u", "password_hash": BCRYPT_HASH}}}}
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(config(upstream, dup), plugins={"basic-auth": BasicAuthPlugin})
    assert "already belongs to 'a'" in str(err.value)
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(config(upstream, CONSUMERS, anonymous="nobody"), plugins={"basic-auth": BasicAuthPlugin})
    assert "nobody" in str(err.value)
