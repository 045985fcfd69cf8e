"""Schema: what [plugins.cors] accepts and rejects, with key paths."""

import pytest
import triogate
from triogate.testing import plugin_config
from triogate_cors import CorsPlugin

P = "plugins.cors"


def errors(raw: dict) -> list[str]:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(CorsPlugin, raw, path=P)
    return err.value.errors


def test_defaults() -> None:
    cfg = plugin_config(CorsPlugin, {"origins": ["https://app.example.com"]})
    assert cfg.methods == ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
    assert cfg.headers == [] and cfg.exposed_headers == []
    assert cfg.credentials is False and cfg.max_age is None


def test_an_origin_is_required() -> None:
    assert "give at least one origin" in errors({})[0]


def test_wildcard_with_credentials_is_refused() -> None:
    [e] = errors({"origins": ["*"], "credentials": True})
    assert e.startswith(f"{P}: credentials:") and "cannot be combined" in e


@pytest.mark.parametrize("raw, where", [
    ({"origins": ["app.example.com"]}, f"{P}.origins[0]"),
    ({"origins": ["https://a.example/path"]}, f"{P}.origins[0]"),
    ({"origin_regexes": ["https://(unclosed"]}, f"{P}.origin_regexes[0]"),
    ({"origins": ["*"], "methods": ["get"]}, f"{P}.methods[0]"),
    ({"origins": ["*"], "headers": ["x bad"]}, f"{P}.headers[0]"),
    ({"origins": ["*"], "exposed_headers": ["ok", "x bad"]}, f"{P}.exposed_headers[1]"),
    ({"origins": ["https://a.example"], "credentials": True, "exposed_headers": ["*"]}, f"{P}: exposed_headers"),
    ({"origins": ["*"], "max_age": -1}, f"{P}.max_age"),
])
def test_bad_values(raw: dict, where: str) -> None:
    [e] = errors(raw)
    assert e.startswith(f"{where}:"), e


@pytest.mark.parametrize("raw, where", [
    ({"origins": "https://a.example"}, f"{P}.origins"),
    ({"origins": ["*"], "credentials": "yes"}, f"{P}.credentials"),
    ({"origins": ["*"], "max_age": 1.5}, f"{P}.max_age"),
    ({"origins": ["*"], "allow_all": True}, f"{P}.allow_all"),
])
def test_wrong_types_and_unknown_keys(raw: dict, where: str) -> None:
    [e] = errors(raw)
    assert e.startswith(where + ":"), e


async def test_bad_config_refuses_to_start(gateway_factory) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"routes": {"r": {"plugins": {"cors": {"origins": ["*"], "credentials": True}}}}},
                              plugins={"cors": CorsPlugin})
    assert any(e.startswith("routes.r.plugins.cors: credentials:") for e in err.value.errors), err.value.errors
