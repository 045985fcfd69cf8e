"""Schema: what [routes.<r>.plugins.response-transform] accepts and rejects, with key paths."""

from __future__ import annotations

import pytest
from triogate import ConfigError
from triogate.testing import load_gateway, plugin_config
from triogate_response_transform import ResponseTransform

P = "routes.r.plugins.response-transform"


def test_defaults() -> None:
    cfg = plugin_config(ResponseTransform, {"status": {"500": 502}})
    assert cfg.max_body_bytes == 1 << 20 and cfg.non_json_body == "pass"


@pytest.mark.parametrize(("rules", "expected"), [
    ({}, "no rule configured"),
    ({"status": {"5xx": 502}}, "status.5xx: expected a status code"),
    ({"status": {"500": 99}}, "status.500: expected a status code 200-599"),
    ({"status": {"500": "502"}}, "expected an integer"),
    ({"append": {"body": {"a": 1}}}, "append.body: unknown key"),
    ({"add": {"query": {"a": "1"}}}, "add.query: unknown key"),
    ({"remove": {"body": ["a"]}, "max_body_bytes": -1}, "max_body_bytes: expected a positive"),
    ({"remove": {"body": ["a"]}, "non_json_body": "drop"}, "expected one of"),
])
def test_schema_errors(rules: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        plugin_config(ResponseTransform, rules, path=P)
    assert any(e.startswith(P) and expected in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(("rules", "expected"), [
    ({"add": {"headers": {"content-length": "1"}}}, "managed by the gateway"),
    ({"remove": {"headers": ["Transfer-Encoding"]}}, "managed by the gateway"),
    ({"add": {"headers": {"x-a": "{nope}"}}}, "{nope} is not a parameter"),
    ({"add": {"body": {"a": {"b": "{principal.sub"}}}}, "unclosed {"),
    ({"rename": {"body": {"a.": "b"}}}, "expected a (dotted) field name"),
])
def test_gateway_level_errors(rules: dict, expected: str) -> None:
    raw = {"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:1"}]}},
           "routes": {"r": {"paths": ["/r/{id}"], "upstream": "u", "plugins": {"response-transform": rules}}}}
    with pytest.raises(ConfigError) as info:
        load_gateway(raw, plugins={"response-transform": ResponseTransform})
    assert any(P in e and expected in e for e in info.value.errors), info.value.errors
