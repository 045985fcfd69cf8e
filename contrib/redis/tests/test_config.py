"""RedisConfig schema: defaults, modes, validation errors with key paths."""

import attrs
import pytest
from triogate import ConfigError, Plugin, setting
from triogate.testing import plugin_config
from triogate_redis import RedisConfig, parse_hostport


@attrs.define(frozen=True)
class _Cfg:
    redis: RedisConfig = setting(factory=RedisConfig, description="redis")


class _P(Plugin):
    Config = _Cfg


def test_defaults_are_standalone_localhost():
    cfg = RedisConfig()
    assert cfg.mode == "standalone"
    assert cfg.describe() == "redis://127.0.0.1:6379/0"
    assert cfg.key_prefix == "triogate:"


def test_modes():
    assert RedisConfig(sentinels=["10.0.0.1:26379"], sentinel_service="main").mode == "sentinel"
    assert RedisConfig(cluster_nodes=["10.0.0.1:7000", "[::1]:7001"]).mode == "cluster"
    assert parse_hostport("[::1]:7001") == ("::1", 7001)


def test_describe_hides_credentials():
    cfg = RedisConfig(url="rediss://user:s3cret@cache.internal:6380/2")
    assert "s3cret" not in cfg.describe() and "user" not in cfg.describe()
    assert cfg.describe() == "rediss://cache.internal:6380/2"


def test_identity_is_hashable_and_equal_for_equal_configs():
    a = RedisConfig(cluster_nodes=["h:1"])
    assert hash(a.identity) == hash(RedisConfig(cluster_nodes=["h:1"]).identity)
    assert a.identity != RedisConfig(cluster_nodes=["h:2"]).identity


@pytest.mark.parametrize(("raw", "message"), [
    ({"url": "http://x"}, "scheme must be one of"),
    ({"sentinels": ["a:1"], "cluster_nodes": ["b:2"]}, "mutually exclusive"),
    ({"cluster_nodes": ["nohost"]}, "cluster_nodes: expected host:port"),
    ({"sentinels": ["a:99999"]}, "sentinels: expected host:port"),
    ({"timeout": 0}, "timeout: must be > 0"),
    ({"max_connections": 0}, "max_connections: must be >= 1"),
])
def test_invalid_values_are_config_errors(raw, message):
    with pytest.raises(ConfigError) as info:
        plugin_config(_P, {"redis": raw})
    assert any(message in e and e.startswith("plugin.redis") for e in info.value.errors), info.value.errors


def test_wrong_type_and_unknown_key_are_rejected():
    with pytest.raises(ConfigError) as info:
        plugin_config(_P, {"redis": {"timeout": "fast", "hots": []}})
    text = "\n".join(info.value.errors)
    assert "plugin.redis.timeout" in text and "plugin.redis.hots: unknown key" in text
