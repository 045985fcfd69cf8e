"""Schema and load-time checks: what [plugins.fallback] accepts and rejects, with key paths."""

from __future__ import annotations

import pytest
import triogate
from triogate.testing import load_gateway, plugin_config
from triogate_fallback import FallbackPlugin

P = "plugins.fallback"


def errors(raw: dict) -> list[str]:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(FallbackPlugin, raw, path=P)
    return err.value.errors


def test_defaults() -> None:
    cfg = plugin_config(FallbackPlugin, {"upstream": "b"})
    assert cfg.statuses == [502, 503, 504] and cfg.header == "x-fallback" and cfg.static is None
    cfg = plugin_config(FallbackPlugin, {"static": {}})
    assert cfg.static.status == 200 and cfg.static.headers == {} and cfg.static.body == ""


def test_neither_or_both() -> None:
    [e] = errors({})
    assert e.startswith(f"{P}:") and "either upstream" in e
    [e] = errors({"upstream": "b", "static": {"body": "x"}})
    assert e.startswith(f"{P}:") and "exclusive" in e


@pytest.mark.parametrize("raw, where", [
    ({"upstream": "b", "statuses": [200]}, f"{P}.statuses[0]"),
    ({"upstream": "b", "statuses": []}, f"{P}: statuses"),
    ({"upstream": "b", "header": "x bad"}, f"{P}.header"),
    ({"static": {"status": 99}}, f"{P}.static.status"),
    ({"static": {"headers": {"bad name": "v"}}}, f"{P}.static.headers.\"bad name\""),
    ({"static": {"headers": {"content-length": "3"}}}, f"{P}.static.headers"),
    ({"static": {"code": 200}}, f"{P}.static.code"),
    ({"upstream": 3}, f"{P}.upstream"),
])
def test_bad_values(raw: dict, where: str) -> None:
    errs = errors(raw)
    assert any(e.startswith(f"{where}:") for e in errs), errs


def test_unknown_upstream_is_a_config_error() -> None:
    cfg = {"upstreams": {"primary": {"targets": [{"url": "http://127.0.0.1:1"}]}},
           "routes": {"r": {"paths": ["/"], "upstream": "primary", "plugins": {"fallback": {"upstream": "nope"}}}}}
    with pytest.raises(triogate.ConfigError) as err:
        load_gateway(cfg, plugins={"fallback": FallbackPlugin})
    assert any(e.startswith("routes.r.plugins.fallback: upstream: unknown upstream 'nope' (known: primary)")
               for e in err.value.errors), err.value.errors
    cfg["plugins"] = {"fallback": {"upstream": "gone"}}  # a global instance is checked the same way
    del cfg["routes"]["r"]["plugins"]
    with pytest.raises(triogate.ConfigError) as err:
        load_gateway(cfg, plugins={"fallback": FallbackPlugin})
    assert any(e.startswith("plugins.fallback: upstream: unknown upstream 'gone'") for e in err.value.errors)


def test_known_upstream_loads() -> None:
    cfg = {"upstreams": {"primary": {"targets": [{"url": "http://127.0.0.1:1"}]},
                         "backup": {"targets": [{"url": "http://127.0.0.1:2"}]}},
           "routes": {"r": {"paths": ["/"], "upstream": "primary", "plugins": {"fallback": {"upstream": "backup"}}}}}
    gw = load_gateway(cfg, plugins={"fallback": FallbackPlugin})
    [inst] = gw.services.instances(FallbackPlugin)
    assert inst.marker == "upstream:backup"
