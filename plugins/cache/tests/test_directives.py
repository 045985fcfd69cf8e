"""Parsing Cache-Control and HTTP dates; the RFC 9111 rules as functions."""

from __future__ import annotations

from triogate import Headers
from triogate_cache import policy
from triogate_cache.directives import (
    delta_seconds,
    format_http_date,
    http_date,
    parse_cache_control,
    request_directives,
)
from triogate_cache.entry import Entry, VaryIndex, decode, encode


def test_parse_cache_control() -> None:
    cc = parse_cache_control(['max-age=60, no-cache="set-cookie, x-a"', "PUBLIC", ' s-maxage = "30" ,private'])
    assert cc == {"max-age": "60", "no-cache": "set-cookie, x-a", "public": None, "s-maxage": "30", "private": None}
    assert delta_seconds(cc, "max-age") == 60 and delta_seconds(cc, "nope") is None


def test_conflicting_or_invalid_max_age_means_stale() -> None:
    assert delta_seconds(parse_cache_control(["max-age=60, max-age=10"]), "max-age") == 0
    assert delta_seconds(parse_cache_control(["max-age=soon"]), "max-age") == 0
    assert delta_seconds(parse_cache_control(["max-age=60, max-age=60"]), "max-age") == 60


def test_pragma_only_without_cache_control() -> None:
    assert request_directives(Headers([("pragma", "no-cache")])) == {"no-cache": None}
    assert request_directives(Headers([("pragma", "no-cache"), ("cache-control", "max-age=5")])) == {"max-age": "5"}


def test_http_dates() -> None:
    assert http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert http_date(format_http_date(784111777)) == 784111777
    assert http_date("0") is None and http_date("") is None and http_date(None) is None


def test_freshness_order() -> None:
    def life(cc: str, **headers: str) -> float:
        h = Headers((k.replace("_", "-"), v) for k, v in headers.items())
        return policy.freshness_lifetime(200, parse_cache_control([cc]), h, 1000.0, heuristic_fraction=0.1,
                                         heuristic_max=50, default_ttl=7)

    assert life("s-maxage=5, max-age=9") == 5
    assert life("max-age=9", expires=format_http_date(5000)) == 9
    assert life("", date=format_http_date(1000), expires=format_http_date(1100)) == 100
    assert life("", date=format_http_date(1000), last_modified=format_http_date(900)) == 10
    assert life("", date=format_http_date(1000), last_modified=format_http_date(0)) == 50  # capped
    assert life("") == 7


def test_initial_age() -> None:
    h = Headers([("age", "10"), ("date", format_http_date(980))])
    assert policy.initial_age(h, request_time=995, response_time=1000) == 20  # apparent age wins
    h = Headers([("age", "10")])
    assert policy.initial_age(h, request_time=995, response_time=1000) == 15  # age + response delay


def test_etag_comparison_is_weak() -> None:
    assert policy.etag_matches(['W/"a"'], '"a"') and policy.etag_matches(["*"], '"x"')
    assert not policy.etag_matches(['"b"'], '"a"') and not policy.etag_matches(["*"], None)


def test_record_roundtrip() -> None:
    e = Entry(200, [(b"etag", b'"x"'), (b"x-bin", "é".encode("latin-1"))], b"\x00\xffbody", 1.5, 2.5, 3.0, 4.0,
              60.0, {"accept": "json"})
    d = decode(encode(e))
    assert isinstance(d, Entry)
    assert (d.status, d.headers, d.body, d.vary, d.freshness, d.initial_age) == (
        200, e.headers, e.body, e.vary, 60.0, 3.0)
    v = decode(encode(VaryIndex(("accept", "x-a"))))
    assert isinstance(v, VaryIndex) and v.names == ("accept", "x-a")
