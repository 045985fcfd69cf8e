"""Schema: limit syntax, cross-field rules, defaults (like Kong's 01-schema_spec)."""

import pytest
from triogate import ConfigError
from triogate.testing import plugin_config
from triogate_rate_limit import Limit, RateLimitPlugin, parse_limit


@pytest.mark.parametrize(("text", "limit"), [
    ("10/second", Limit(10, 1, "second")),
    ("1000/hour", Limit(1000, 3600, "hour")),
    ("5/minutes", Limit(5, 60, "minute")),
    ("100/30s", Limit(100, 30, "30s")),
    ("7/10 minutes", Limit(7, 600, "600s")),
    ("1/d", Limit(1, 86400, "day")),
    (" 3 / Minute ", Limit(3, 60, "minute")),
])
def test_parse_limit(text, limit):
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["10", "10/fortnight", "0/second", "x/second", "10/0s", "-1/minute", "10/second/2"])
def test_parse_limit_rejects(text):
    with pytest.raises(ValueError):
        parse_limit(text)


def test_defaults():
    cfg = plugin_config(RateLimitPlugin, {"limits": ["10/second"]})
    assert cfg.algorithm_name == "sliding-window" and cfg.key == "consumer" and cfg.backend == "memory"
    assert cfg.fault_tolerant is True and cfg.headers and cfg.legacy_headers
    assert [p.policy_name for p in cfg.all_policies] == ["consumer"]
    assert RateLimitPlugin.priority == 900


def test_token_bucket_is_gcra():
    cfg = plugin_config(RateLimitPlugin, {"limits": ["10/second"], "algorithm": "token-bucket", "burst": 20})
    assert cfg.algorithm_name == "gcra" and cfg.burst == 20


def test_policies():
    cfg = plugin_config(RateLimitPlugin, {
        "limits": ["5/minute"], "key": "consumer",
        "policies": [{"limits": ["100/minute"], "key": "route"}, {"limits": ["1/second"], "key": "header",
                                                                  "key_header": "X-Tenant"}],
    })
    assert [p.policy_name for p in cfg.all_policies] == ["consumer", "route", "header-x-tenant"]
    only = plugin_config(RateLimitPlugin, {"policies": [{"limits": ["1/second"], "key": "ip"}]})
    assert [p.policy_name for p in only.all_policies] == ["ip"]


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "limits: required"),
    ({"limits": ["10/fortnight"]}, "cannot parse limit"),
    ({"limits": ["10/minute", "20/60s"]}, "same period"),
    ({"limits": ["1/second"], "key": "header"}, "key_header: required"),
    ({"limits": ["1/second"], "key_header": "X-A"}, "key_header: only used"),
    ({"limits": ["1/second"], "burst": 5}, 'burst: only used with algorithm = "gcra"'),
    ({"limits": ["1/second"], "algorithm": "gcra", "burst": 0}, "burst: must be >= 1"),
    ({"limits": ["1/second"], "policies": [{"limits": ["2/second"]}]}, "duplicate policy name(s) consumer"),
    ({"policies": [{"key": "ip"}]}, "policies[0].limits: required"),
    ({"limits": ["1/second"], "memory_max_keys": 0}, "memory_max_keys"),
    ({"limits": ["1/second"], "name": "a b"}, "name:"),
])
def test_invalid(raw, message):
    with pytest.raises(ConfigError) as info:
        plugin_config(RateLimitPlugin, raw)
    assert any(message in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(("raw", "path"), [
    ({"limits": "10/second"}, "plugin.limits"),
    ({"limits": ["1/second"], "algorithm": "leaky"}, "plugin.algorithm"),
    ({"limits": ["1/second"], "key": "cookie"}, "plugin.key"),
    ({"limits": ["1/second"], "backend": "memcached"}, "plugin.backend"),
    ({"limits": ["1/second"], "limit": 3}, "plugin.limit: unknown key"),
    ({"limits": ["1/second"], "redis": {"url": "http://x"}}, "plugin.redis"),
])
def test_wrong_types_and_keys(raw, path):
    with pytest.raises(ConfigError) as info:
        plugin_config(RateLimitPlugin, raw)
    assert any(e.startswith(path) for e in info.value.errors), info.value.errors
