"""Label derivation: Cache-Status parsing, bounded labels, methods and status classes."""

from __future__ import annotations

import pytest

from triogate_prometheus import cache_result
from triogate_prometheus.labels import BoundedLabel, method_label, status_class


@pytest.mark.parametrize("header, result", [
    ("triogate; hit", "hit"),
    ("triogate; hit; ttl=120", "hit"),
    ("triogate; hit; ttl=-5", "stale"),
    ("triogate; fwd=stale; fwd-status=304", "stale"),
    ("triogate; fwd=miss; stored", "miss"),
    ("triogate; fwd=uri-miss", "miss"),
    ("triogate; fwd=vary-miss", "miss"),
    ("triogate; fwd=bypass", "bypass"),
    ("triogate; fwd=method", "bypass"),
    ("origin-cache; hit, triogate; fwd=miss", "miss"),   # the last member is the gateway's
    ("origin-cache; fwd=miss, triogate; hit", "hit"),
    ("triogate", None),
    ("", None),
    (None, None),
])
def test_cache_status(header, result):
    assert cache_result(header) == result


def test_bounded_label():
    b = BoundedLabel(2)
    assert [b(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", "other", "a", "other", "b"]


def test_method_and_status_class():
    assert method_label("GET") == "GET" and method_label("PROPFIND") == "OTHER"
    assert [status_class(s) for s in (101, 200, 304, 429, 502, 0)] == ["1xx", "2xx", "3xx", "4xx", "5xx", "none"]
