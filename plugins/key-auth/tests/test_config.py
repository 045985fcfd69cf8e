"""Schema tests for key-auth and its consumer credentials."""

import pytest
import triogate
from triogate.testing import plugin_config

from triogate_key_auth import KeyAuthPlugin

from key_auth_support import CONSUMERS, config


def test_defaults() -> None:
    c = plugin_config(KeyAuthPlugin, {})
    assert c.key_names == ["apikey", "x-api-key"]
    assert (c.key_in_header, c.key_in_query, c.strip_credential, c.anonymous) == (True, False, True, None)


@pytest.mark.parametrize("raw, message", [
    ({"key_names": []}, "at least one name"),
    ({"key_in_header": False}, "at least one must be true"),
    ({"key_names": ["bad name"]}, "key_names"),
    ({"key_names": "apikey"}, "key_names"),
    ({"hide": True}, "hide: unknown key"),
])
def test_rejected(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(KeyAuthPlugin, raw, path="plugins.key-auth")
    assert message in str(err.value), err.value.errors


@pytest.mark.parametrize("credential, message", [
    ({"keys": ["sha256:abc"]}, "64 hex digits"),
    ({"keys": "k"}, "expected a table"),
    ({"key": "k"}, "expected a table"),
    ({"keys": [""]}, "non-empty string"),
])
async def test_bad_credentials_are_config_errors(gateway_factory, upstream, credential, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(config(upstream, {"x": {"credentials": {"key-auth": credential}}}),
                              plugins={"key-auth": KeyAuthPlugin})
    assert any("consumers.x.credentials.key-auth" in e and message in e for e in err.value.errors), err.value.errors


async def test_duplicate_key_and_unknown_anonymous(gateway_factory, upstream) -> None:
    dup = {"a": {"credentials": {"key-auth": {"keys": ["k1"]}}}, "b": {"credentials": {"key-auth": {"keys": ["k1"]}}}}
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(config(upstream, dup), plugins={"key-auth": KeyAuthPlugin})
    assert "already used by 'a'" in str(err.value)
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(config(upstream, CONSUMERS, anonymous="nobody"), plugins={"key-auth": KeyAuthPlugin})
    assert any(e.startswith("routes.api.plugins.key-auth") and "nobody" in e for e in err.value.errors)
