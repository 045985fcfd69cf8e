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


class _Ctx:
    def __init__(self, extra, status=401, short_circuit=("jwt", "auth")):
        self.log_extra = extra
        self.status = status
        self.short_circuit = short_circuit
        self.route = None


@pytest.mark.parametrize("extra, plugin, reason", [
    ({"reason": "expired_token"}, "jwt", "expired_token"),
    ({"reason": "has spaces in it"}, "jwt", None),
    ({"authn": "jwt:expired"}, "jwt", "expired"),
    ({"authn": "key-auth:invalid_key, jwt:bad_signature"}, "jwt", "bad_signature"),
    ({"authn": "key-auth:invalid_key, jwt:bad_signature"}, "jwt+key-auth", "key-auth:invalid_key,jwt:bad_signature"),
    ({"acl": "denied"}, "acl", "denied"),
    ({"ip_restriction": "refused"}, "ip-restriction", "refused"),
    ({"trace_id": "abc"}, "jwt", None),
    ({}, "jwt", None),
])
def test_reason_of(extra, plugin, reason):
    from triogate_prometheus.labels import reason_of

    assert reason_of(_Ctx(extra), plugin) == reason


def test_auth_failure_defaults():
    from triogate_prometheus.labels import auth_failure

    assert auth_failure(_Ctx({}, 401)) == ("jwt", "unauthenticated")
    assert auth_failure(_Ctx({"acl": "denied"}, 403, ("acl", "auth"))) == ("acl", "denied")
    assert auth_failure(_Ctx({}, 403, ("acl", "auth"))) == ("acl", "forbidden")
    assert auth_failure(_Ctx({}, 200, None)) is None
    assert auth_failure(_Ctx({}, 429, ("rate-limit", "transform"))) is None
