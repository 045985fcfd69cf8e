"""triogate.auth: the conventions that make several auth plugins on one route an OR.

Unit tests of each helper, then two small plugins built only from the helpers behind a
live gateway: anonymous fallback, a real credential replacing it, an invalid credential
cancelling it, consumer headers and token stripping end to end.
"""

from __future__ import annotations

import attrs
import pytest
import triogate
from triogate import Context, GatewayServices, Principal, Request, loads_config
from triogate.auth import (
    AUTH_FAILED,
    CONSUMER_HEADERS,
    FoundToken,
    check_anonymous,
    claim,
    claim_header_value,
    consumer_principal,
    find_token,
    is_authenticated,
    missing_credential,
    note_outcome,
    reject_credential,
    set_consumer_headers,
    strip_query_params,
    strip_token,
    word_set,
)
from triogate.testing import UpstreamServer

CONSUMERS = """
[consumers.alice]
groups = ["staff"]
custom_id = "u-1"
[consumers.guest]
groups = ["public"]
"""


def services() -> GatewayServices:
    return GatewayServices(loads_config(CONSUMERS), None, {})  # type: ignore[arg-type]


def request(target: str = "/", headers: list[tuple[str, str]] | None = None) -> Request:
    path, _, query = target.partition("?")
    return Request("GET", path, query, [(k.encode(), v.encode()) for k, v in headers or []])


def context(target: str = "/", headers: list[tuple[str, str]] | None = None) -> Context:
    return Context(request(target, headers), services(), "req-1", "127.0.0.1")


# --------------------------------------------------------------------------- the public surface


def test_exports_only_public_names() -> None:
    from triogate import auth

    assert all(not name.startswith("_") for name in auth.__all__)
    assert all(getattr(auth, name).__doc__ for name in auth.__all__ if callable(getattr(auth, name)))
    assert CONSUMER_HEADERS == ("x-consumer-username", "x-consumer-custom-id", "x-anonymous-consumer")
    assert AUTH_FAILED == "triogate.auth_failed"


# --------------------------------------------------------------------------- outcomes and principals


def test_note_outcome_joins_every_failure() -> None:
    ctx = context()
    note_outcome(ctx, "jwt:expired")
    note_outcome(ctx, "key-auth:invalid_key")
    assert ctx.log_extra["authn"] == "jwt:expired, key-auth:invalid_key"


def test_check_anonymous_names_the_key() -> None:
    gw = services()
    assert check_anonymous(gw, "guest") == "guest"
    assert check_anonymous(gw, None) is None
    with pytest.raises(ValueError, match=r"^anonymous: no consumer named 'ghost' in \[consumers\]$"):
        check_anonymous(gw, "ghost")


def test_consumer_principal_takes_the_consumers_groups() -> None:
    gw = services()
    p = consumer_principal(gw, "alice", method="key-auth", credential="k1")
    assert (p.consumer, p.credential, p.groups, p.method, p.anonymous) == ("alice", "k1", {"staff"}, "key-auth", False)
    p = consumer_principal(gw, None, method="jwt", credential="sub-1", claims={"sub": "sub-1"}, scopes=["a", "b"])
    assert (p.consumer, p.groups, p.scopes, p.claims) == (None, frozenset(), {"a", "b"}, {"sub": "sub-1"})


def test_missing_credential_grants_anonymous_only_when_nothing_else_happened() -> None:
    ctx = context()
    missing_credential(ctx, 'ApiKey realm="x"', anonymous=None, method="key-auth")
    assert ctx.principal is None and ctx.challenges == ['ApiKey realm="x"']

    missing_credential(ctx, 'ApiKey realm="x"', anonymous="guest", method="key-auth")
    assert ctx.principal is not None and ctx.principal.anonymous and ctx.principal.groups == {"public"}
    assert ctx.challenges == ['ApiKey realm="x"']  # recorded once
    assert not is_authenticated(ctx)

    ctx = context()
    ctx.principal = real = Principal(consumer="alice", method="jwt")
    missing_credential(ctx, "Bearer", anonymous="guest", method="key-auth")
    assert ctx.principal is real and is_authenticated(ctx)

    ctx = context()
    ctx.state[AUTH_FAILED] = True
    missing_credential(ctx, "Bearer", anonymous="guest", method="key-auth")
    assert ctx.principal is None


def test_reject_credential_cancels_anonymous_and_marks_the_request() -> None:
    ctx = context()
    missing_credential(ctx, 'ApiKey realm="x"', anonymous="guest", method="key-auth")
    reject_credential(ctx, 'Basic realm="x"', "basic-auth:invalid_credentials")
    assert ctx.principal is None and ctx.state[AUTH_FAILED] is True
    assert ctx.challenges == ['ApiKey realm="x"', 'Basic realm="x"']
    assert ctx.log_extra["authn"] == "basic-auth:invalid_credentials"

    ctx = context()
    ctx.principal = real = Principal(consumer="alice", method="jwt")
    reject_credential(ctx, "Bearer", "x:bad")
    assert ctx.principal is real  # a real principal from an earlier plugin stays


def test_set_consumer_headers() -> None:
    ctx = context()
    ctx.principal = consumer_principal(ctx.gateway, "alice", method="key-auth")
    set_consumer_headers(ctx)
    h = ctx.request.headers
    assert (h.get("x-consumer-username"), h.get("x-consumer-custom-id"), h.get("x-anonymous-consumer")) == (
        "alice", "u-1", None)

    ctx = context()
    ctx.principal = consumer_principal(ctx.gateway, "guest", method="key-auth", anonymous=True)
    set_consumer_headers(ctx)
    h = ctx.request.headers
    assert (h.get("x-consumer-username"), h.get("x-consumer-custom-id"), h.get("x-anonymous-consumer")) == (
        "guest", None, "true")

    for principal in (None, Principal(credential="sub-1", method="jwt"), Principal(consumer="gone", method="jwt")):
        ctx = context()
        ctx.principal = principal
        set_consumer_headers(ctx)
        assert not any(n in ctx.request.headers for n in CONSUMER_HEADERS)


# --------------------------------------------------------------------------- bearer tokens


@pytest.mark.parametrize(("target", "headers", "found"), [
    ("/", [("authorization", "Bearer abc")], FoundToken("abc", "header", "authorization")),
    ("/", [("authorization", "bearer   abc  ")], FoundToken("abc", "header", "authorization")),
    ("/", [("authorization", "abc")], None),  # authorization needs the scheme
    ("/", [("authorization", "Basic Ym9iOnB3")], None),
    ("/", [("authorization", "Bearer ")], None),
    ("/", [("x-token", "abc")], FoundToken("abc", "header", "x-token")),
    ("/", [("x-token", "Bearer abc")], FoundToken("abc", "header", "x-token")),
    ("/", [("cookie", "a=1; tok=abc")], FoundToken("abc", "cookie", "tok")),
    ("/?x=1&t=abc", [], FoundToken("abc", "query", "t")),
    ("/?t=", [], None),  # empty values are not tokens
    # header before cookie before query
    ("/?t=q", [("cookie", "tok=c"), ("x-token", "h")], FoundToken("h", "header", "x-token")),
    ("/?t=q", [("cookie", "tok=c")], FoundToken("c", "cookie", "tok")),
])
def test_find_token(target: str, headers: list[tuple[str, str]], found: FoundToken | None) -> None:
    assert find_token(request(target, headers), ["authorization", "x-token"], ["tok"], ["t"]) == found


def test_find_token_looks_only_where_configured() -> None:
    req = request("/?t=abc", [("cookie", "tok=abc")])
    assert find_token(req, ["authorization"]) is None
    token, where, name = find_token(req, [], query_params=["t"])  # type: ignore[misc]
    assert (token, where, name) == ("abc", "query", "t")


def test_strip_token_leaves_everything_else_as_sent() -> None:
    req = request("/", [("authorization", "Bearer abc"), ("x-other", "1")])
    strip_token(req, FoundToken("abc", "header", "authorization"))
    assert "authorization" not in req.headers and req.headers.get("x-other") == "1"

    req = request("/", [("cookie", "a=1; tok=abc"), ("cookie", "b=2")])
    strip_token(req, FoundToken("abc", "cookie", "tok"))
    assert req.headers.get_all("cookie") == ["a=1; b=2"]
    req = request("/", [("cookie", "tok=abc")])
    strip_token(req, FoundToken("abc", "cookie", "tok"))
    assert "cookie" not in req.headers

    req = request("/?a=%20x&t=abc&b=&t%3D=keep")
    strip_token(req, FoundToken("abc", "query", "t"))
    assert req.query == "a=%20x&b=&t%3D=keep"


def test_strip_query_params_decodes_names() -> None:
    req = request("/?api%5Fkey=1&apikey=2&x=3&&apikey")
    strip_query_params(req, {"apikey", "api_key"})
    assert req.query == "x=3"


# --------------------------------------------------------------------------- claims


def test_claim_follows_dotted_paths() -> None:
    claims = {"realm_access": {"roles": ["admin"]}, "a.b": "literal", "a": {"b": "nested"}, "n": None}
    assert claim(claims, "realm_access.roles") == ["admin"]
    assert claim(claims, "a.b") == "literal"
    assert claim(claims, "realm_access.missing") is None
    assert claim(claims, "n.x") is None
    assert claim(claims, "absent") is None


def test_word_set() -> None:
    assert word_set("read  write") == {"read", "write"}
    assert word_set(["read", 1, None, "write"]) == {"read", "write"}
    assert word_set(None) == word_set(7) == word_set({"a": 1}) == frozenset()


@pytest.mark.parametrize(("value", "raw"), [
    (None, None),
    ("alice", b"alice"),
    (True, b"true"),
    (42, b"42"),
    (["a", 1, 2.5], b"a,1,2.5"),
    ([True, "x"], b'[true,"x"]'),
    ({"team": "caf\u00e9"}, '{"team":"caf\u00e9"}'.encode()),
    ([{"a": 1}], b'[{"a":1}]'),
    ("a\tb", b"a\tb"),
    ("evil\r\nx-admin: 1", None),
    (["ok", "bad\n"], None),
    ("nul\x00", None),
])
def test_claim_header_value(value: object, raw: bytes | None) -> None:
    assert claim_header_value(value) == raw


# --------------------------------------------------------------------------- two plugins on one route


@attrs.define(frozen=True)
class TokenConfig:
    token: str = triogate.setting("", description="the one valid token")
    consumer: str = triogate.setting("", description="whom it authenticates")
    anonymous: str | None = triogate.setting(None, description="consumer without a token")
    header: str = triogate.setting("authorization", description="where the token is")
    realm: str = triogate.setting("triogate", description="realm of the challenge")


class TokenAuth(triogate.Plugin):
    """A whole auth plugin in a few lines, only from triogate.auth."""

    priority = 1300
    Config = TokenConfig

    def __init__(self, config: TokenConfig, gateway: GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.anonymous = check_anonymous(gateway, config.anonymous)
        self.challenge = f'Bearer realm="{config.realm}"'

    @triogate.hookimpl
    async def auth(self, ctx: Context) -> None:
        ctx.request.headers.remove(*CONSUMER_HEADERS)
        found = find_token(ctx.request, [self.config.header])
        if found is not None:
            strip_token(ctx.request, found)
        if is_authenticated(ctx):
            return
        if found is None:
            missing_credential(ctx, self.challenge, anonymous=self.anonymous, method=self.name)
        elif found.token != self.config.token:
            reject_credential(ctx, self.challenge, f"{self.name}:invalid")
        else:
            ctx.principal = consumer_principal(ctx.gateway, self.config.consumer, method=self.name,
                                               credential=found.token)

    @triogate.hookimpl
    async def transform(self, ctx: Context) -> None:
        set_consumer_headers(ctx)


class OtherTokenAuth(TokenAuth):
    priority = 1200


def gateway_config(upstream: UpstreamServer, first_anonymous: str | None = "guest") -> dict:
    first = {"token": "t-alice", "consumer": "alice", "realm": "first"}
    if first_anonymous:
        first["anonymous"] = first_anonymous
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "plugins": {
            "first": first, "second": {"token": "t-bob", "consumer": "bob", "header": "x-token", "realm": "second"}}}},
        "consumers": {"alice": {"groups": ["staff"], "custom_id": "u-1"}, "bob": {"groups": ["ops"]},
                      "guest": {"groups": ["public"]}},
    }


async def test_helpers_make_two_plugins_an_or(gateway_factory, upstream: UpstreamServer) -> None:
    gw = await gateway_factory(gateway_config(upstream), plugins={"first": TokenAuth, "second": OtherTokenAuth})
    # no credential: the first plugin's anonymous consumer, client copies of consumer headers dropped
    r = await gw.client.get("/api", headers={"x-consumer-username": "alice"})
    h = r.json()["headers"]
    assert r.status == 200 and h["x-consumer-username"] == ["guest"] and h["x-anonymous-consumer"] == ["true"]
    # the second plugin's real credential replaces the anonymous principal; the token is not forwarded
    r = await gw.client.get("/api", headers={"x-token": "t-bob", "x-anonymous-consumer": "true"})
    h = r.json()["headers"]
    assert r.status == 200 and h["x-consumer-username"] == ["bob"]
    assert "x-anonymous-consumer" not in h and "x-token" not in h
    r = await gw.client.get("/api", headers={"authorization": "Bearer t-alice"})
    h = r.json()["headers"]
    assert h["x-consumer-username"] == ["alice"] and h["x-consumer-custom-id"] == ["u-1"]
    assert "authorization" not in h
    # an invalid credential cancels the anonymous fallback: 401 with both challenges
    n = len(upstream.requests)
    r = await gw.client.get("/api", headers={"x-token": "wrong"})
    assert r.status == 401
    assert sorted(r.headers.get_all("www-authenticate")) == ['Bearer realm="first"', 'Bearer realm="second"']
    assert len(upstream.requests) == n


async def test_unknown_anonymous_is_a_config_error(gateway_factory, upstream: UpstreamServer) -> None:
    with pytest.raises(triogate.ConfigError, match="no consumer named 'ghost'"):
        await gateway_factory(gateway_config(upstream, first_anonymous="ghost"),
                              plugins={"first": TokenAuth, "second": OtherTokenAuth})


def test_map_subjects_names_the_key_path_of_a_conflict() -> None:
    import pytest
    from triogate.auth import map_subjects

    out: dict[str, str] = {}
    map_subjects("consumers.a.credentials.jwt", "sub-1", "a", out)
    map_subjects("consumers.b.credentials.jwt", ["sub-2", "sub-3"], "b", out)
    assert out == {"sub-1": "a", "sub-2": "b", "sub-3": "b"}
    map_subjects("consumers.a.credentials.jwt", "sub-1", "a", out)  # the same owner again is fine
    with pytest.raises(ValueError, match=r"consumers.c.credentials.jwt.subject: 'sub-2' already belongs to consumer 'b'"):
        map_subjects("consumers.c.credentials.jwt", "sub-2", "c", out)
    with pytest.raises(ValueError, match=r"consumers.c.credentials.jwt.subject: expected strings"):
        map_subjects("consumers.c.credentials.jwt", ["ok", 5], "c", out)
