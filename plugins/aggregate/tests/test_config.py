"""Config validation: every mistake is a config error with its key path."""

from __future__ import annotations

import pytest
from triogate import ConfigError
from triogate.testing import load_gateway
from triogate_aggregate import Aggregate


def _errors(plugin: dict, *, paths=("/d/{id}",), global_instance: bool = False) -> list[str]:
    raw = {
        "upstreams": {"users": {"targets": [{"url": "http://127.0.0.1:1"}]},
                      "orders": {"targets": [{"url": "http://127.0.0.1:2"}]}},
        "routes": {"d": {"paths": list(paths), "plugins": {} if global_instance else {"aggregate": plugin}}},
    }
    if global_instance:
        raw["plugins"] = {"aggregate": plugin}
    with pytest.raises(ConfigError) as info:
        load_gateway(raw, plugins={"aggregate": Aggregate})
    return info.value.errors


def _ok(plugin: dict, paths=("/d/{id}",)) -> None:
    raw = {
        "upstreams": {"users": {"targets": [{"url": "http://127.0.0.1:1"}]}},
        "routes": {"d": {"paths": list(paths), "plugins": {"aggregate": plugin}}},
    }
    load_gateway(raw, plugins={"aggregate": Aggregate})


USER = {"upstream": "users", "path": "/users/{id}"}


def test_valid_config_loads() -> None:
    _ok({"backends": {"user": USER, "orders": {"upstream": "users", "path": "/o?user={resp.user.id}",
                                               "required": False, "fallback": [], "group": "orders"}}})


@pytest.mark.parametrize(("plugin", "expected"), [
    ({"backends": {}}, "expected at least one backend"),
    ({"backends": {"u": {"path": "/x"}}}, "backends.u.upstream: required key missing"),
    ({"backends": {"u": {"upstream": "nope", "path": "/x"}}}, "unknown upstream 'nope'"),
    ({"backends": {"u": {"upstream": "users", "path": "x"}}}, "expected a path starting with /"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/{nope}"}}}, "{nope} is not a parameter"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/{id"}}}, "unclosed {"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/{cookie.a}"}}}, "unknown reference {cookie.a}"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/{a b}"}}}, "invalid reference {a b}"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/../y"}}}, "invalid path segment"),
    ({"backends": {"u": {"upstream": "users", "path": "/x#f"}}}, "no fragment"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/{resp.v.id}"}}}, "unknown backend 'v'"),
    ({"backends": {"u": {"upstream": "users", "path": "/x/{resp.u.id}"}}}, "refers to the backend itself"),
    ({"backends": {"a": {"upstream": "users", "path": "/{resp.b.id}"},
                   "b": {"upstream": "users", "path": "/{resp.a.id}"}}}, "dependency cycle a -> b -> a"),
    ({"backends": {"u": {**USER, "fallback": {"a": 1}}}}, "only an optional backend"),
    ({"backends": {"u": {**USER, "timeout": 0}}}, "backends.u.timeout: expected a positive"),
    ({"backends": {"u": {**USER, "timeout": "1s"}}}, "expected a number"),
    ({"backends": {"u": {**USER, "method": "TRACE"}}}, "expected one of"),
    ({"backends": {"u": {**USER, "forward_headers": ["host"]}}}, "cannot forward header 'host'"),
    ({"backends": {"u": {**USER, "headers": {"content-length": "1"}}}}, "cannot set header"),
    ({"backends": {"u": {**USER, "headers": {"x-a": "a\nb"}}}}, "backends.u.headers.x-a: 'a\\nb' is not a valid header value"),
    ({"backends": {"u": {**USER, "group": "a.b"}}}, "without dots"),
    ({"backends": {"u": {**USER, "required": False, "target": "data", "fallback": []}}}, "fallback: target"),
    ({"backends": {"u": {**USER, "bogus": 1}}}, "backends.u.bogus: unknown key"),
    ({"backends": {"u.v": USER}}, "a backend name is letters"),
    ({"backends": {"u": USER}, "on_failure": "ignore"}, "expected one of"),
    ({"backends": {"u": USER}, "deadline": -1}, "deadline: expected a positive"),
    ({"backends": {"u": USER}, "status": 500}, "status: expected a 2xx"),
])
def test_invalid_configs_are_reported_with_key_paths(plugin: dict, expected: str) -> None:
    errors = _errors(plugin)
    assert any("routes.d.plugins.aggregate" in e and expected in e for e in errors), errors


def test_route_param_must_exist_in_every_path() -> None:
    errors = _errors({"backends": {"u": USER}}, paths=("/d/{id}", "/e"))
    assert any("{id} is not a parameter of every path" in e for e in errors), errors


def test_aggregate_is_a_route_plugin() -> None:
    errors = _errors({"backends": {"u": {"upstream": "users", "path": "/u"}}}, global_instance=True)
    assert any("plugins.aggregate" in e and "configure it under [routes" in e for e in errors), errors


@pytest.mark.parametrize(("backend", "key"), [
    ({"forward_headers": ["authorization", "X_Tenant"]}, "backends.u.forward_headers[1]"),
    ({"headers": {"x-tenant": "{header.X_Tenant}"}}, "backends.u.headers.x-tenant"),
    ({"path": "/users/{header.X_Tenant}"}, "backends.u.path"),
])
def test_header_names_with_underscore_never_arrive(backend, key) -> None:
    """Client headers named with "_" are dropped before any plugin runs (gateway.underscores_in_headers):
    forwarding or reading one would never see it, so the config is refused (triogate check), naming the key."""
    errors = _errors({"backends": {"u": {"upstream": "users", "path": "/users/{id}", **backend}}})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"routes.d.plugins.aggregate.{key}: header 'X_Tenant' contains \"_\""), errors
