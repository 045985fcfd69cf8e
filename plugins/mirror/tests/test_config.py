"""Schema: what [plugins.mirror] accepts and rejects, with key paths; the shadow checked at load."""

import pytest
import triogate
from triogate.testing import load_gateway, plugin_config
from triogate_mirror import MirrorPlugin

P = "plugins.mirror"


def errors(raw: dict) -> list[str]:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(MirrorPlugin, raw, path=P)
    return err.value.errors


def test_defaults() -> None:
    cfg = plugin_config(MirrorPlugin, {"upstream": "shadow"})
    assert cfg.percentage == 100 and cfg.deterministic is False
    assert cfg.max_body_bytes == 65536 and cfg.max_in_flight == 100 and cfg.timeout == 5.0
    assert (cfg.header, cfg.header_value) == ("x-mirrored-by", "triogate")


def test_upstream_is_required() -> None:
    [e] = errors({})
    assert e.startswith((f"{P}.upstream:", f"{P}: upstream")), e


@pytest.mark.parametrize("raw, where", [
    ({"percentage": 101}, f"{P}.percentage"),
    ({"percentage": -1}, f"{P}.percentage"),
    ({"percentage": "50"}, f"{P}.percentage"),
    ({"max_body_bytes": -1}, f"{P}.max_body_bytes"),
    ({"max_in_flight": 0}, f"{P}.max_in_flight"),
    ({"timeout": 0}, f"{P}.timeout"),
    ({"header": "x bad"}, f"{P}.header"),
    ({"header_value": "a\r\nb"}, f"{P}.header_value"),
    ({"deterministic": "yes"}, f"{P}.deterministic"),
    ({"sample": 5}, f"{P}.sample"),
])
def test_bad_values(raw: dict, where: str) -> None:
    [e] = errors({"upstream": "shadow", **raw})
    assert e.startswith(f"{where}:"), e


def _config(plugins: dict, route_plugins: dict | None = None) -> dict:
    return {
        "upstreams": {"primary": {"targets": [{"url": "http://127.0.0.1:9"}]},
                      "shadow": {"targets": [{"url": "http://127.0.0.1:9"}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "primary", "plugins": route_plugins or {}}},
        "plugins": plugins,
    }


def test_unknown_upstream_is_a_config_error() -> None:
    with pytest.raises(triogate.ConfigError) as err:
        load_gateway(_config({"mirror": {"upstream": "shadw"}}), plugins={"mirror": MirrorPlugin})
    [e] = err.value.errors
    assert e.startswith(f"{P}: upstream: unknown upstream 'shadw'") and "primary, shadow" in e, e


async def test_unknown_upstream_on_a_route_refuses_to_start(gateway_factory) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(_config({}, {"mirror": {"upstream": "nope"}}), plugins={"mirror": MirrorPlugin})
    assert any(e.startswith("routes.r.plugins.mirror: upstream: unknown upstream 'nope'")
               for e in err.value.errors), err.value.errors


def test_body_limit_is_capped_by_the_core_buffer() -> None:
    cfg = _config({"mirror": {"upstream": "shadow", "max_body_bytes": 1 << 20}})
    cfg["gateway"] = {"limits": {"body_buffer_bytes": 4096}}
    gw = load_gateway(cfg, plugins={"mirror": MirrorPlugin})
    [plugin] = gw.services.instances(MirrorPlugin)
    assert plugin.body_limit == 4096
