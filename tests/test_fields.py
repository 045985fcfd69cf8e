"""triogate.fields: the shared checks, in Python (first error) and through the loader (every error, keyed)."""

from __future__ import annotations

import attrs
import pytest
import triogate
from triogate import fields
from triogate.config import structure


@attrs.define(frozen=True)
class Sample:
    header: str | None = triogate.setting(None, description="a header", validator=fields.header_name)
    headers: list[str] = triogate.setting(factory=list, description="headers", validator=fields.header_names)
    to_headers: dict[str, str] = triogate.setting(
        factory=dict, description="claim -> header", validator=fields.header_name_values)
    url: str | None = triogate.setting(None, description="a URL", validator=fields.http_url)
    origin: str = triogate.setting("http://a:1", description="an origin", validator=fields.origin_url)
    nets: list[str] = triogate.setting(factory=list, description="CIDRs", validator=fields.cidrs(strict=True))
    path: str | None = triogate.setting(None, description="a path", validator=fields.path)
    timeout: float = triogate.setting(1.0, description="seconds", validator=fields.duration)
    grace: float = triogate.setting(0.0, description="seconds", validator=fields.duration_or_zero)
    size: int = triogate.setting(1, description="count", validator=fields.at_least(1, show_value=True))
    methods: list[str] = triogate.setting(factory=list, description="methods", validator=fields.method_names)
    realm: str = triogate.setting("r", description="realm", validator=fields.realm)


@attrs.define(frozen=True)
class Outer:
    inner: list[Sample] = triogate.setting(factory=list, description="tables")


def errors(raw: dict, cls: type = Sample) -> list[str]:
    with pytest.raises(triogate.ConfigError) as err:
        structure(raw, cls, "plugins.x")
    return err.value.errors


def test_good_values_pass() -> None:
    s = structure({"header": "X-Id", "headers": ["a", "b-c"], "to_headers": {"sub": "x-sub"},
                   "url": "https://idp.example/keys", "origin": "https://10.0.0.1:8443", "nets": ["10.0.0.0/8", "::1"],
                   "path": "/health", "timeout": 2, "grace": 0, "size": 3, "methods": ["GET"]}, Sample)
    assert s.timeout == 2.0 and s.nets == ["10.0.0.0/8", "::1"]


def test_the_loader_reports_every_bad_value_with_its_key_path_in_field_order() -> None:
    assert errors({"header": "a b", "headers": ["ok", "x y", "é"], "to_headers": {"odd key": "no good"},
                   "url": "ftp://x", "origin": "http://a:1/p?q", "nets": ["10.0.0.1/8", "nope"], "path": "rel",
                   "timeout": 0, "grace": -1, "size": 0, "methods": ["get"], "realm": 'a"b'}) == [
        "plugins.x.header: expected a header name, got 'a b'",
        "plugins.x.headers[1]: expected a header name, got 'x y'",
        "plugins.x.headers[2]: expected a header name, got 'é'",
        "plugins.x.to_headers.\"odd key\": expected a header name, got 'no good'",
        "plugins.x.url: expected an http(s) URL, got 'ftp://x'",
        "plugins.x.origin: a target is an origin, without path or query: 'http://a:1/p?q'",
        "plugins.x.nets[0]: expected an IP address or CIDR, got '10.0.0.1/8' (10.0.0.1/8 has host bits set)",
        ("plugins.x.nets[1]: expected an IP address or CIDR, got 'nope' "
         "('nope' does not appear to be an IPv4 or IPv6 network)"),
        "plugins.x.path: expected a path starting with /, got 'rel'",
        "plugins.x.timeout: expected a number of seconds above 0",
        "plugins.x.grace: expected 0 or more seconds",
        "plugins.x.size: expected at least 1, got 0",
        'plugins.x.methods[0]: expected an upper-case method name like "GET", got \'get\'',
        "plugins.x.realm: must not contain quotes or backslashes",
    ]


def test_nested_tables_are_checked_with_their_paths() -> None:
    assert errors({"inner": [{}, {"headers": ["a b"], "timeout": -1}]}, Outer) == [
        "plugins.x.inner[1].headers[0]: expected a header name, got 'a b'",
        "plugins.x.inner[1].timeout: expected a number of seconds above 0",
    ]


def test_a_type_error_is_reported_before_any_value_check() -> None:
    assert errors({"headers": "x-a", "timeout": 0}) == ['plugins.x.headers: expected an array, got a string "x-a"']


def test_python_construction_raises_the_first_problem() -> None:
    with pytest.raises(fields.FieldError) as err:
        Sample(headers=["ok", "a b", "c d"], timeout=0)
    assert str(err.value) == "headers[1]: expected a header name, got 'a b'"
    assert (err.value.key, err.value.message) == ("headers[1]", "expected a header name, got 'a b'")
    assert isinstance(err.value, ValueError)


def test_token_location_needs_one_place_and_valid_header_names() -> None:
    @attrs.define(frozen=True)
    class TokenConfig(fields.TokenLocation):
        realm: str = triogate.setting("r", description="realm")

    assert structure({}, TokenConfig).header_names == ["authorization"]
    assert errors({"header_names": [], "cookie_names": []}, TokenConfig) == [
        "plugins.x.header_names: at least one place to look for the token (header_names, cookie_names, query_params)",
    ]
    assert errors({"header_names": ["x token"]}, TokenConfig) == [
        "plugins.x.header_names[0]: expected a header name, got 'x token'",
    ]
    assert structure({"header_names": [], "query_params": ["access_token"]}, TokenConfig).query_params == [
        "access_token"]


@pytest.mark.parametrize("name, ok", [
    ("x-request-id", True), ("X_Under", True), ("!#$%&'*+-.^_`|~", True),
    ("", False), ("a b", False), ("a:b", False), ("a\r\nb", False), ("é", False), (None, False),
])
def test_header_name_is_an_rfc9110_token(name, ok) -> None:
    assert fields.is_header_name(name) is ok
