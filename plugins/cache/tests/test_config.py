"""Schema tests: what [plugins.cache] accepts and what it rejects (with its key path)."""

from __future__ import annotations

import pytest
import triogate
from triogate.testing import plugin_config
from triogate_cache import Cache


def test_defaults() -> None:
    c = plugin_config(Cache, {})
    assert c.store == "memory" and c.methods == ["GET", "HEAD"] and 200 in c.statuses and 206 not in c.statuses
    assert c.default_ttl == 0 and c.coalesce and not c.key_consumer
    assert Cache.priority == 100


@pytest.mark.parametrize(("raw", "message"), [
    ({"methods": ["POST"]}, "only GET and HEAD"),
    ({"methods": ["HEAD"]}, "must include GET"),
    ({"statuses": [206]}, "cannot store [206]"),
    ({"statuses": [304]}, "cannot store [304]"),
    ({"memory_size": 0}, "memory_size: must be positive"),
    ({"max_object_size": 10, "memory_size": 5}, "larger than memory_size"),
    ({"default_ttl": -1}, "default_ttl: must not be negative"),
    ({"heuristic_fraction": 2}, "heuristic_fraction"),
    ({"key_query": ["a"], "ignore_query": ["b"]}, "one or the other"),
    ({"cache_name": "my cache"}, "cache_name"),
    ({"redis": {"key_prefix": "{x}"}}, "braces"),
    ({"redis": {"url": "http://x"}}, "plugins.cache.redis"),
])
def test_cross_field_checks(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(Cache, raw, path="plugins.cache")
    assert message in str(err.value), err.value.errors


def test_wrong_type_is_rejected_with_its_key_path() -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(Cache, {"default_ttl": "soon"}, path="plugins.cache")
    assert any(e.startswith("plugins.cache.default_ttl:") for e in err.value.errors), err.value.errors


def test_unknown_store_and_key() -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(Cache, {"store": "disk", "nope": 1}, path="plugins.cache")
    text = "\n".join(err.value.errors)
    assert "plugins.cache.store" in text and "plugins.cache.nope: unknown key" in text


async def test_bad_config_refuses_to_start(gateway_factory) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"plugins": {"cache": {"methods": ["PUT"]}}}, plugins={"cache": Cache})
    assert any(e.startswith("plugins.cache") for e in err.value.errors), err.value.errors


def test_readme_config_table_is_current() -> None:
    from pathlib import Path

    from triogate.testing import readme_is_current

    assert readme_is_current(Path(__file__).parent.parent), "run python -m triogate.docgen plugins/cache"
