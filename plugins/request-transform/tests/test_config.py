"""Schema: what [routes.<r>.plugins.request-transform] accepts and rejects, with key paths."""

from __future__ import annotations

import pytest
from triogate import ConfigError
from triogate.testing import load_gateway, plugin_config
from triogate_request_transform import RequestTransform

P = "routes.r.plugins.request-transform"


def _gateway_errors(rules: dict, route: dict | None = None) -> list[str]:
    raw = {"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:1"}]}},
           "routes": {"r": {"paths": ["/r/{id}"], "upstream": "u", **(route or {}),
                            "plugins": {"request-transform": rules}}}}
    with pytest.raises(ConfigError) as info:
        load_gateway(raw, plugins={"request-transform": RequestTransform})
    return info.value.errors


def test_defaults() -> None:
    cfg = plugin_config(RequestTransform, {"add": {"headers": {"x-a": "1"}}})
    assert cfg.max_body_bytes == 1 << 20 and cfg.non_json_body == "reject" and cfg.path is None


@pytest.mark.parametrize(("rules", "expected"), [
    ({}, "no rule configured"),
    ({"add": {"headers": {"x-a": 1}}}, "expected a string"),
    ({"add": {"cookies": {}}}, "add.cookies: unknown key"),
    ({"append": {"body": {"a": 1}}}, "append.body: unknown key"),
    ({"method": "BREW"}, "expected one of"),
    ({"remove": {"body": ["a"]}, "max_body_bytes": 0}, "max_body_bytes: expected a positive"),
    ({"remove": {"body": ["a"]}, "non_json_body": "ignore"}, "expected one of"),
])
def test_schema_errors(rules: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        plugin_config(RequestTransform, rules, path=P)
    assert any(e.startswith(P) and expected in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(("rules", "expected"), [
    ({"add": {"headers": {"content-length": "1"}}}, "managed by the gateway"),
    ({"remove": {"headers": ["Host"]}}, "managed by the gateway"),
    ({"rename": {"headers": {"x-a": "transfer-encoding"}}}, "managed by the gateway"),
    ({"add": {"headers": {"bad name": "1"}}}, "invalid header name"),
    ({"add": {"headers": {"x-a": "a\r\nx-admin: 1"}}}, "not a valid header value"),
    ({"add": {"headers": {"x-a": "{nope}"}}}, "{nope} is not a parameter"),
    ({"add": {"headers": {"x-a": "{cookie.a}"}}}, "unknown reference {cookie.a}"),
    ({"add": {"headers": {"x-a": "{principal.sub"}}}, "unclosed {"),
    ({"add": {"query": {"a&b": "1"}}}, "invalid query parameter name"),
    ({"remove": {"body": ["a..b"]}}, "expected a (dotted) field name"),
    ({"add": {"body": {"a": "{query.x.y}"}}}, "expected {query.<name>}"),
    ({"path": "v2/x"}, "expected a path starting with /"),
    ({"path": "/v2?x=1"}, "no query or fragment"),
    ({"path": "/v2/../admin"}, "invalid path segment"),
    ({"path": "/v2/{rest}/x"}, "{rest} can only be the whole last segment"),
    ({"path": "/v2/{id}"}, "already sets rewrite/strip_prefix"),
])
def test_gateway_level_errors(rules: dict, expected: str) -> None:
    route = {"strip_prefix": "/r"} if rules.get("path") == "/v2/{id}" else None
    errors = _gateway_errors(rules, route)
    assert any(e.startswith(f"<string>: {P}") or P in e for e in errors), errors
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(("rules", "key"), [
    ({"rename": {"headers": {"X_Foo": "x-bar"}}}, "rename.headers.X_Foo"),
    ({"add": {"headers": {"x-bar": "v={header.X_Foo}"}}}, "add.headers.x-bar"),
    ({"replace": {"query": {"q": "{header.X_Foo}"}}}, "replace.query.q"),
    ({"add": {"body": {"a": {"b": ["{header.X_Foo}"]}}}}, "add.body.a"),
    ({"path": "/v2/{header.X_Foo}"}, "path"),
])
def test_header_names_with_underscore_never_arrive(rules, key) -> None:
    """Client headers named with "_" are dropped before any plugin runs (gateway.underscores_in_headers):
    a rule that reads one would never match, so the config is refused (triogate check), naming the key."""
    errors = _gateway_errors(rules)
    assert len(errors) == 1 and errors[0].startswith(f"{P}.{key}: header 'X_Foo' contains \"_\""), errors


def test_header_names_with_underscore_are_fine_when_allowed() -> None:
    raw = {"gateway": {"underscores_in_headers": "allow"},
           "upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:1"}]}},
           "routes": {"r": {"paths": ["/r"], "upstream": "u",
                            "plugins": {"request-transform": {"rename": {"headers": {"X_Foo": "x-bar"}}}}}}}
    load_gateway(raw, plugins={"request-transform": RequestTransform})  # raises ConfigError if refused
