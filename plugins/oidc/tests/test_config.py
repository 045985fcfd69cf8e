"""Config errors name the key and say what was expected; the README's table is current."""

from __future__ import annotations

from pathlib import Path

import pytest
import triogate
from oidc_support import KEY
from triogate.testing import plugin_config, readme_is_current
from triogate_oidc import OidcPlugin

BASE = {"issuer": "https://id.example", "client_id": "app", "client_secret": "s", "cookie_keys": [KEY]}


def errors(**settings) -> str:
    with pytest.raises(Exception) as err:
        plugin_config(OidcPlugin, {**BASE, **settings})
    return str(err.value)


def test_defaults() -> None:
    c = plugin_config(OidcPlugin, BASE)
    assert (c.redirect_path, c.login_path, c.logout_path) == ("/oauth2/callback", "/oauth2/login", "/oauth2/logout")
    assert c.cookie_secure is True and c.scopes == ["openid", "profile", "email"]


@pytest.mark.parametrize("settings, message", [
    ({"cookie_keys": []}, "cookie_keys: expected at least one key"),
    ({"cookie_keys": ["short"]}, "cookie_keys[0]: expected 32 random bytes in base64url"),
    ({"cookie_keys": [KEY, "x" * 60]}, "cookie_keys[1]: expected 32 random bytes"),
    ({"cookie_keys": [KEY, KEY]}, "the same key is listed twice"),
    ({"scopes": ["profile"]}, 'scopes: must contain "openid"'),
    ({"client_secret": None}, "client_secret: needed with token_auth_method = 'client_secret_basic'"),
    ({"redirect_path": "oauth2/cb"}, "redirect_path: expected a path starting with /"),
    ({"login_path": "//evil"}, "login_path: expected a path starting with /"),
    ({"logout_path": "/oauth2/callback"}, "each needs its own path"),
    ({"issuer": "id.example"}, "issuer: expected an http(s) URL"),
    ({"base_url": "https://app.example/path"}, "base_url: a target is an origin"),
    ({"cookie_name": "bad name"}, "cookie_name: expected a cookie name"),
    ({"extra_auth_params": {"state": "x"}}, "extra_auth_params.state: set by the plugin itself"),
    ({"cookie_max_chunks": 0}, "cookie_max_chunks"),
    ({"cookie_name": "__Host-s", "cookie_secure": False}, "cookie_name: a __Host- cookie needs cookie_secure"),
    ({"cookie_name": "__Host-s", "cookie_domain": "example.com"}, "cookie_name: a __Host- cookie needs"),
    ({"cookie_name": "__host-s", "cookie_path": "/app"}, "cookie_name: a __Host- cookie needs"),
    ({"cookie_name": "__Secure-s", "cookie_secure": False}, "cookie_name: a __Secure- cookie needs cookie_secure"),
])
def test_config_errors(settings, message) -> None:
    assert message in errors(**settings)


def test_key_is_never_shown() -> None:
    bad = "A" * 40 + "!!"
    assert bad not in errors(cookie_keys=[bad])


def test_public_client() -> None:
    c = plugin_config(OidcPlugin, {**BASE, "client_secret": None, "token_auth_method": "none"})
    assert c.client_secret is None


async def test_errors_name_the_route(gateway_factory) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"routes": {"web": {"paths": ["/"], "plugins": {"oidc": {**BASE, "cookie_keys": ["x"]}}}}},
                              plugins={"oidc": OidcPlugin})
    assert any(e.startswith("routes.web.plugins.oidc.cookie_keys[0]: expected 32 random bytes") for e in err.value.errors)


async def test_consumer_credentials_are_checked(gateway_factory) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"routes": {"web": {"paths": ["/"], "plugins": {"oidc": BASE}}},
                               "consumers": {"a": {"credentials": {"oidc": {"sub": "x"}}}}},
                              plugins={"oidc": OidcPlugin})
    assert any("consumers.a.credentials.oidc: expected a table with subject" in e for e in err.value.errors)


def test_readme_table_is_current() -> None:
    assert readme_is_current(Path(__file__).parents[1])


def test_secrets_are_masked() -> None:
    c = plugin_config(OidcPlugin, {**BASE, "client_secret": "top-secret-value"})
    shown = str(triogate.mask_secrets(c))
    assert "top-secret-value" not in shown and KEY not in shown
    assert "https://id.example" in shown  # the rest is shown as is
