"""Config validation: every mistake is a config error with its key path, at load."""

from __future__ import annotations

import pytest
from triogate import ConfigError
from triogate.testing import load_gateway
from triogate_traffic_split import TrafficSplitPlugin

UPSTREAMS = {"orders": {"targets": [{"url": "http://127.0.0.1:1"}]},
             "orders-v2": {"targets": [{"url": "http://127.0.0.1:2"}]}}
CANARY = {"upstreams": [{"name": "orders", "weight": 90}, {"name": "orders-v2", "weight": 10}]}


def _raw(plugin: dict) -> dict:
    return {"upstreams": UPSTREAMS,
            "routes": {"orders": {"paths": ["/api"], "upstream": "orders", "plugins": {"traffic-split": plugin}}}}


def _errors(plugin: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_gateway(_raw(plugin), plugins={"traffic-split": TrafficSplitPlugin})
    return info.value.errors


@pytest.mark.parametrize("plugin", [
    {"rules": [CANARY]},
    {"sticky": "consumer", "rules": [{"match": {"headers": {"x-canary": "1"}}, "upstreams": [{"name": "orders-v2"}]},
                                     CANARY]},
    {"sticky": "cookie", "cookie_name": "split", "cookie_max_age": 0, "cookie_secure": True, "rules": [CANARY]},
    {"sticky": "cookie:session", "rules": [{"match": {"cookies": {"beta": "1"}, "query": {"v": "2"},
                                                      "consumers": ["alice"]}, "upstreams": [{"name": "orders-v2"}]}]},
    {"sticky": "header:x-user", "rules": [{"upstreams": [{"name": "orders", "weight": 0},
                                                         {"name": "orders-v2", "weight": 1}]}]},
])
def test_valid_configs_load(plugin: dict) -> None:
    load_gateway(_raw(plugin), plugins={"traffic-split": TrafficSplitPlugin})


P = "routes.orders.plugins.traffic-split"


@pytest.mark.parametrize(("plugin", "expected"), [
    ({}, f"{P}.rules: required key missing"),
    ({"rules": []}, "rules: expected at least one rule"),
    ({"rules": [{"upstreams": [{"name": "nope"}]}]},
     "rules[0].upstreams[0].name: unknown upstream 'nope' (known: orders, orders-v2)"),
    ({"rules": [CANARY, {"upstreams": [{"name": "orders", "weight": 1}, {"name": "v9", "weight": 1}]}]},
     "rules[1]: unreachable, rules[0] has no match"),
    ({"rules": [{"match": {"headers": {"x": "1"}}, "upstreams": [{"name": "orders", "weight": 1},
                                                               {"name": "v9", "weight": 1}]}]},
     "rules[0].upstreams[1].name: unknown upstream 'v9'"),
    ({"rules": [{"upstreams": []}]}, "upstreams: expected at least one upstream"),
    ({"rules": [{"match": {"headers": {"x": "1"}}}]}, f"{P}.rules[0].upstreams: required key missing"),
    ({"rules": [{"upstreams": [{"name": "orders", "weight": 0}]}]}, "at least one upstream with a weight > 0"),
    ({"rules": [{"upstreams": [{"name": "orders", "weight": -1}]}]}, "weight: expected a whole number >= 0"),
    ({"rules": [{"upstreams": [{"name": "orders"}, {"name": "orders"}]}]}, "listed twice"),
    ({"rules": [{"upstreams": [{"weight": 1}]}]}, "name: required key missing"),
    ({"rules": [{"match": {"headers": {"a b": "1"}}, "upstreams": [{"name": "orders"}]}]},
     "headers: expected header names, got 'a b'"),
    ({"rules": [{"match": {"cookies": {"a;b": "1"}}, "upstreams": [{"name": "orders"}]}]}, "expected cookie names"),
    ({"rules": [{"match": {"method": "GET"}, "upstreams": [{"name": "orders"}]}]}, "method"),
    ({"sticky": "session", "rules": [CANARY]}, "sticky: expected \"consumer\""),
    ({"sticky": "cookie:", "rules": [CANARY]}, "sticky: expected"),
    ({"cookie_name": "a b", "rules": [CANARY]}, "cookie_name: expected a cookie name"),
    ({"cookie_max_age": -1, "rules": [CANARY]}, "cookie_max_age: expected"),
    ({"cookie_path": "x", "rules": [CANARY]}, "cookie_path: expected a path starting with /"),
    ({"cookie_path": "/; Domain=evil.example", "rules": [CANARY]}, "cookie_path: expected a path"),
])
def test_config_errors_name_the_key(plugin: dict, expected: str) -> None:
    errors = _errors(plugin)
    assert any(expected in e and e.startswith(P) for e in errors), errors
