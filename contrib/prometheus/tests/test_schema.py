"""Config of the prometheus plugin (schema tests, separate from behaviour)."""

from __future__ import annotations

import pytest
from triogate import ConfigError, GatewayServices
from triogate.testing import load_gateway
from triogate_prometheus import PrometheusConfig, PrometheusPlugin


def build(toml: str) -> GatewayServices:
    return load_gateway(toml, plugins={"prometheus": PrometheusPlugin}).services


def test_defaults():
    c = PrometheusConfig()
    assert (c.path, c.consumer_label, c.max_consumers, c.max_reasons) == ("/metrics", False, 100, 50)


def test_global_instance_is_fine():
    p = build("[plugins.prometheus]\nconsumer_label = true\nmax_consumers = 5\n")
    (inst,) = p.instances(PrometheusPlugin)
    assert inst.config.consumer_label is True and inst.config.max_consumers == 5


@pytest.mark.parametrize("bad, message", [
    ('path = "metrics"', "path: expected a path starting with /"),
    ("max_consumers = 0", "max_consumers and max_reasons: expected at least 1"),
    ("sample_interval = 0", "sample_interval: expected a number of seconds above 0"),
    ('consumer_label = "yes"', "plugins.prometheus.consumer_label"),
    ("unknown = 1", "plugins.prometheus.unknown"),
])
def test_bad_settings(bad, message):
    with pytest.raises(ConfigError) as exc:
        build(f"[plugins.prometheus]\n{bad}\n")
    assert any(message in e for e in exc.value.errors), exc.value.errors


def test_route_instance_is_refused():
    toml = """
[upstreams.u]
targets = [{ url = "http://127.0.0.1:9" }]
[routes.r]
upstream = "u"
[routes.r.plugins.prometheus]
"""
    with pytest.raises(ConfigError) as exc:
        build(toml)
    assert any("routes.r.plugins.prometheus" in e and "[plugins.prometheus]" in e for e in exc.value.errors)
