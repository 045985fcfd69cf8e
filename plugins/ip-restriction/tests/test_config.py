"""Schema: what [plugins.ip-restriction] accepts and rejects, with key paths."""

import pytest
import triogate
from triogate.testing import plugin_config
from triogate_ip_restriction import IpRestrictionPlugin

P = "plugins.ip-restriction"


def error(raw: dict) -> str:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(IpRestrictionPlugin, raw, path=P)
    [e] = err.value.errors
    return e


def test_defaults() -> None:
    cfg = plugin_config(IpRestrictionPlugin, {"allow": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]})
    assert cfg.deny == [] and cfg.status == 403


def test_a_list_is_required() -> None:
    assert "give at least one" in error({})


@pytest.mark.parametrize("raw, where", [
    ({"allow": ["10.0.0.1/8"]}, "allow[0]"),          # host bits set: ambiguous, refused
    ({"allow": ["10.0.0.0/33"]}, "allow[0]"),
    ({"deny": ["::1", "example.com"]}, "deny[1]"),
    ({"deny": ["2001:db8::/129"]}, "deny[0]"),
    ({"deny": ["1.2.3.4"], "status": 500}, "status"),
])
def test_bad_values(raw: dict, where: str) -> None:
    e = error(raw)
    assert e.startswith(f"{P}.{where}:"), e


@pytest.mark.parametrize("raw, where", [
    ({"allow": "10.0.0.0/8"}, f"{P}.allow"),
    ({"allow": [10]}, f"{P}.allow[0]"),
    ({"allow": ["10.0.0.0/8"], "whitelist": []}, f"{P}.whitelist"),
])
def test_wrong_types_and_unknown_keys(raw: dict, where: str) -> None:
    e = error(raw)
    assert e.startswith(where + ":"), e
