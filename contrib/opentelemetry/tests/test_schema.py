"""Config of the opentelemetry plugin (schema tests, separate from behaviour)."""

from __future__ import annotations

import pytest
from triogate import ConfigError, GatewayServices
from triogate.testing import load_gateway
from triogate_opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin


def build(toml: str) -> GatewayServices:
    return load_gateway(toml, plugins={"opentelemetry": OpenTelemetryPlugin}).services


def test_defaults():
    c = OpenTelemetryConfig()
    assert (c.service_name, c.sampling_ratio, c.parent_based, c.exporter) == ("triogate", 1.0, True, "otlp")
    assert c.endpoint == "http://127.0.0.1:4318/v1/traces"


def test_full_table():
    p = build("""
[plugins.opentelemetry]
sampling_ratio = 0.25
exporter = "otlp"
endpoint = "https://otel.example:4318/v1/traces"
headers = { authorization = "Bearer x" }
resource_attributes = { "deployment.environment" = "prod" }
""")
    (inst,) = p.instances(OpenTelemetryPlugin)
    assert inst.config.sampling_ratio == 0.25 and inst.config.headers == {"authorization": "Bearer x"}
    assert inst.provider is None  # nothing starts (no exporter thread) before the startup hook


@pytest.mark.parametrize("bad, message", [
    ("sampling_ratio = 1.5", "sampling_ratio: expected a number from 0.0 to 1.0"),
    ("sampling_ratio = -0.1", "sampling_ratio: expected a number from 0.0 to 1.0"),
    ('exporter = "jaeger"', "plugins.opentelemetry.exporter"),
    ('endpoint = "otel:4318"', "endpoint: expected an http:// or https:// URL"),
    ("timeout = 0", "timeout: expected a number of seconds above 0"),
    ("min_hook_ms = -1", "min_hook_ms: expected 0 or more"),
    ("headers = { a = 1 }", "plugins.opentelemetry.headers"),
])
def test_bad_settings(bad, message):
    with pytest.raises(ConfigError) as exc:
        build(f"[plugins.opentelemetry]\n{bad}\n")
    assert any(message in e for e in exc.value.errors), exc.value.errors


def test_route_instance_is_refused():
    toml = """
[upstreams.u]
targets = [{ url = "http://127.0.0.1:9" }]
[routes.r]
upstream = "u"
[routes.r.plugins.opentelemetry]
"""
    with pytest.raises(ConfigError) as exc:
        build(toml)
    assert any("[plugins.opentelemetry]" in e for e in exc.value.errors)
