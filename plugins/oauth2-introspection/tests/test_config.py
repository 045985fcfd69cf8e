"""Schema tests for the oauth2-introspection table."""

import pytest
import triogate
from triogate.testing import plugin_config

from triogate_oauth2_introspection import IntrospectionPlugin

URL = "https://as.example/introspect"


def test_defaults() -> None:
    c = plugin_config(IntrospectionPlugin, {"introspection_url": URL})
    assert (c.auth_method, c.token_type_hint, c.timeout) == ("client_secret_basic", "access_token", 3.0)
    assert (c.cache_ttl, c.negative_cache_ttl, c.cache_size) == (60.0, 5.0, 10000)
    assert c.strip_credential is True


@pytest.mark.parametrize("raw, message", [
    ({}, "introspection_url: required key missing"),
    ({"introspection_url": "as.example/introspect"}, "expected an http(s) URL"),
    ({"introspection_url": URL, "client_id": "x"}, "set both or neither"),
    ({"introspection_url": URL, "auth_method": "private_key_jwt"}, "expected one of"),
    ({"introspection_url": URL, "timeout": 0}, "timeout"),
    ({"introspection_url": URL, "cache_size": 0}, "cache_size"),
    ({"introspection_url": URL, "negative_cache_ttl": -1}, "negative_cache_ttl"),
    ({"introspection_url": URL, "forward_headers": {"sub": "x user"}}, "forward_headers"),
    ({"introspection_url": URL, "scopes": "read"}, "scopes"),
    ({"introspection_url": URL, "bogus": True}, "bogus: unknown key"),
])
def test_rejected(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(IntrospectionPlugin, raw, path="plugins.oauth2-introspection")
    assert message in str(err.value), err.value.errors
    assert all(e.startswith("plugins.oauth2-introspection") for e in err.value.errors)


async def test_unknown_anonymous_consumer(gateway_factory) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"plugins": {"oauth2-introspection": {"introspection_url": URL, "anonymous": "nobody"}}},
                              plugins={"oauth2-introspection": IntrospectionPlugin})
    assert any(e.startswith("plugins.oauth2-introspection") and "nobody" in e for e in err.value.errors)
