"""triogate.template: parsing, encodings, path safety, resolving references of a request."""

from __future__ import annotations

import pytest
from triogate import Context, Principal, Request
from triogate.template import (
    Missing,
    Namespace,
    PathTemplate,
    Ref,
    Resolver,
    Template,
    check_params,
    encode_query_value,
    encode_segment,
    header_value,
    lookup,
    parse,
    parse_header,
    parse_path,
    raw,
    route_params,
    scalar,
)

RESP = Namespace("resp", min_parts=2, usage="{resp.<backend>.<field>}")


def ctx(target: str = "/", headers: list[tuple[str, str]] | None = None, params: dict[str, str] | None = None,
        principal: Principal | None = None) -> Context:
    path, _, query = target.partition("?")
    c = Context(Request("GET", path, query, [(k.encode(), v.encode()) for k, v in headers or []]),
                None, "req-1", "127.0.0.1")  # type: ignore[arg-type]
    c.params = params or {}
    c.principal = principal
    return c


def values(**kw: str):
    def resolve(ref: Ref) -> str:
        if ref.text not in kw:
            raise Missing(ref)
        return kw[ref.text]
    return resolve


# ---------------------------------------------------------------- parse


def test_parse_splits_literals_and_references() -> None:
    t = parse("a{id}-{query.x}{{lit}}{header.x-y}{principal.org.id}", "k")
    assert t.parts == ("a", Ref("param", ("id",), "id"), "-", Ref("query", ("x",), "query.x"), "{lit}",
                       Ref("header", ("x-y",), "header.x-y"), Ref("principal", ("org", "id"), "principal.org.id"))
    assert [r.ns for r in t.refs] == ["param", "query", "header", "principal"]
    assert all(r.from_request for r in t.refs)
    assert parse("plain }} {{", "k").literal == "plain } {"
    assert parse("", "k").literal == ""
    assert parse("{id}", "k").literal is None


@pytest.mark.parametrize(("text", "expected"), [
    ("{id", "k: unclosed {"),
    ("a}b", "k: unmatched }"),
    ("{a b}", "k: invalid reference {a b}"),
    ("{}", "k: invalid reference {}"),
    ("{cookie.a}", ("k: unknown reference {cookie.a} (expected {<route param>}, {query.<name>}, {header.<name>}"
                    " or {principal.<claim>})")),
    ("{query.a.b}", "k: {query.a.b}: expected {query.<name>}"),
    ("{header.a.b}", "k: {header.a.b}: expected {header.<name>}"),
    ("{resp.u.id}", "k: unknown reference {resp.u.id}"),
])
def test_parse_errors_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        parse(text, "k")
    assert str(info.value).startswith(expected), info.value


def test_extension_namespace() -> None:
    t = parse("/{resp.user.items.0.id}", "k", [RESP])
    (ref,) = t.refs
    assert ref == Ref("resp", ("user", "items", "0", "id"), "resp.user.items.0.id")
    assert not ref.from_request
    with pytest.raises(ValueError, match=r"k: \{resp.user\}: expected \{resp.<backend>.<field>\}"):
        parse("{resp.user}", "k", [RESP])
    with pytest.raises(ValueError, match=r"or \{resp.<backend>.<field>\}\)"):
        parse("{cookie.a}", "k", [RESP])
    for bad in ("query", "Bad", "a-b"):
        with pytest.raises(ValueError, match="invalid template namespace"):
            Namespace(bad)


# ---------------------------------------------------------------- encodings


def test_encodings() -> None:
    assert encode_segment("a b/c?d#e%f") == "a%20b%2Fc%3Fd%23e%25f"
    assert encode_query_value("a&b=c+d#e") == "a%26b%3Dc%2Bd%23e"
    assert raw("a/&\n") == "a/&\n"
    assert header_value("ok é") == "ok é"
    for bad in ("a\r\nX-Admin: 1", "a\nb", "a\rb", "a\x00", "☃"):
        with pytest.raises(ValueError, match="not a valid header value"):
            header_value(bad)


def test_render_encodes_each_value_not_the_literal() -> None:
    t = parse("x/{a}?{b}", "k")
    assert t.render(values(a="1/2", b="&"), encode_segment) == "x/1%2F2?%26"
    assert t.render(values(a="1/2", b="&")) == "x/1/2?&"
    with pytest.raises(Missing) as info:
        t.render(values(a="1"))
    assert str(info.value) == "{b}: no value"
    assert info.value.ref.text == "b" and info.value.why == "no value"


def test_header_templates_refuse_injection() -> None:
    t = parse_header("Bearer {query.t}", "headers.authorization")
    assert t.render_header(values(**{"query.t": "abc"})) == b"Bearer abc"
    with pytest.raises(Missing) as info:
        t.render_header(values(**{"query.t": "a\r\nX-Admin: yes"}))
    assert str(info.value) == "{query.t}: not a valid header value"
    with pytest.raises(Missing):
        t.render_header(values(**{"query.t": "☃"}))
    with pytest.raises(ValueError, match=r"headers.x: 'a\\r\\nb' is not a valid header value"):
        parse_header("a\r\nb", "headers.x")
    with pytest.raises(ValueError):
        Template(("a\nb",)).render_header(values())  # a literal not from parse_header is still checked


# ---------------------------------------------------------------- paths


def test_path_values_are_one_segment() -> None:
    p = parse_path("/users/{id}/x{n}", "path")
    assert p.render(values(id="a/b\\c?d#e", n="1")) == "/users/a%2Fb%5Cc%3Fd%23e/x1"
    assert p.render(values(id="...", n="")) == "/users/.../x"
    assert [r.text for r in p.refs] == ["id", "n"]


@pytest.mark.parametrize("bad", ["..", ".", "../../admin", "a/../b", "..\\x", "..;x=1", "./x", "a/./b"])
def test_dot_segments_are_refused(bad: str) -> None:
    p = parse_path("/users/{id}/x", "path")
    with pytest.raises(Missing, match=r"dot-segment"):
        p.render(values(id=bad))


def test_empty_segment_is_refused() -> None:
    with pytest.raises(Missing, match="a path segment cannot be empty"):
        parse_path("/users/{id}/x", "path").render(values(id=""))


def test_rest_tail() -> None:
    p = parse_path("/v2/{id}/{rest}", "path", rest=True)
    assert p.rest and [r.text for r in p.refs] == ["id"]
    assert p.render(values(id="7"), "/a/b") == "/v2/7/a/b"
    assert p.render(values(id="7"), "") == "/v2/7/"
    assert parse_path("/{rest}", "path", rest=True).render(values(), "x/y") == "/x/y"
    # a route parameter named rest is a parameter, not the tail
    p = parse_path("/v2/{rest}", "path", params={"rest"}, rest=True)
    assert not p.rest and p.render(values(rest="a/b")) == "/v2/a%2Fb"
    with pytest.raises(ValueError, match=r"path: \{rest\} can only be the whole last segment"):
        parse_path("/v2/{rest}/x", "path", rest=True)
    # without rest=True, {rest} is an ordinary parameter reference
    assert parse_path("/v2/{rest}", "path").refs[0] == Ref("param", ("rest",), "rest")


def test_query_pairs() -> None:
    p = parse_path("/o?user={principal.sub}&v=1&flag", "path", query=True)
    assert p.render(values(**{"principal.sub": "a&v=2#x"})) == "/o?user=a%26v%3D2%23x&v=1&flag="
    assert [r.text for r in p.refs] == ["principal.sub"]


@pytest.mark.parametrize(("text", "kw", "expected"), [
    ("v2/x", {}, "path: expected a path starting with / (no query or fragment), got 'v2/x'"),
    ("/v2?x=1", {}, "no query or fragment"),
    ("/v2#f", {}, "no query or fragment"),
    ("x", {"query": True}, "path: expected a path starting with /, got 'x'"),
    ("/x#f", {"query": True}, "path: a path template has no fragment (#)"),
    ("/v2/../admin", {}, "path: invalid path segment '..'"),
    ("/v2/./x", {}, "invalid path segment"),
    ("/v2/a b", {}, "invalid path segment"),
    ("/x?a b=1", {"query": True}, "invalid query parameter name 'a b'"),
    ("/x?=1", {"query": True}, "invalid query parameter name ''"),
    ("/x?a=b?c", {"query": True}, "invalid query value 'b?c'"),
    ("/x/{id", {}, "unclosed {"),
])
def test_path_errors(text: str, kw: dict, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_path(text, "path", **kw)
    assert expected in str(info.value), info.value


def test_route_params_and_check() -> None:
    assert route_params(["/u/{id}/{x}", "/v/{id}"]) == {"id"}
    assert route_params([]) == set()
    refs = parse("{id}{query.a}", "k").refs
    check_params(refs, {"id"})
    check_params(refs, None)  # route unknown: nothing to check
    with pytest.raises(ValueError, match=r"^backends.u: \{id\} is not a parameter of every path of the route"
                                         r" \(parameters: none\)$"):
        check_params(refs, set(), "backends.u")
    assert isinstance(PathTemplate((), ()).refs, tuple)


# ---------------------------------------------------------------- values


def test_scalar_and_lookup() -> None:
    assert [scalar(v) for v in ("a", True, False, 3, 3.5, None, [], {})] == [
        "a", "true", "false", "3", "3.5", None, None, None]
    data = {"a": {"b": [10, {"c": "x"}]}}
    assert lookup(data, ("a", "b", "1", "c")) == "x"
    assert lookup(data, ()) is data
    for path in (("z",), ("a", "b", "2"), ("a", "b", "x"), ("a", "b", "0", "c")):
        with pytest.raises(KeyError):
            lookup(data, path)


def test_resolver_reads_the_request() -> None:
    c = ctx("/x?a=1&a=2&e=&sp=a+b", headers=[("x-h", "v1"), ("x-h", "v2")], params={"id": "a%2Fb"})
    r = Resolver(c)
    one = lambda text: r(parse("{" + text + "}", "k").refs[0])
    assert one("id") == "a/b"  # percent-decoded, to be re-encoded for its place
    assert one("query.a") == "1"
    assert one("query.e") == ""
    assert one("query.sp") == "a b"
    assert one("header.X-H") == "v1"
    for text, why in (("nope", "no value"), ("query.z", "no value"), ("header.z", "no value"),
                      ("principal.sub", "no authenticated principal")):
        with pytest.raises(Missing) as info:
            one(text)
        assert info.value.why == why


def test_resolver_principal() -> None:
    p = Principal(consumer="c1", claims={"sub": "u1", "org": {"id": 7}, "roles": ["a", "b"], "admin": True, "n": None})
    r = Resolver(ctx(principal=p))
    one = lambda text: r(parse("{" + text + "}", "k").refs[0])
    assert [one(t) for t in ("principal.consumer", "principal.id", "principal.sub", "principal.org.id",
                             "principal.roles.1", "principal.admin")] == ["c1", "c1", "u1", "7", "b", "true"]
    for text, why in (("principal.roles", "not a string, number or boolean"), ("principal.n", "no value"),
                      ("principal.org.x", "no value")):
        with pytest.raises(Missing) as info:
            one(text)
        assert info.value.why == why
    with pytest.raises(Missing, match="no authenticated principal"):
        Resolver(ctx(principal=Principal(anonymous=True, consumer="anon")))(Ref("principal", ("consumer",), "x"))


def test_resolver_header_snapshot_and_extensions() -> None:
    c = ctx(headers=[("x-a", "before")])
    r = Resolver(c, headers=c.request.headers.copy(),
                 extra={"resp": lambda ref: lookup({"u": {"id": 5, "o": {}}}, ref.path)})
    c.request.headers.set("x-a", "after")
    assert r(Ref("header", ("x-a",), "header.x-a")) == "before"
    assert Resolver(c)(Ref("header", ("x-a",), "header.x-a")) == "after"
    t = parse_path("/t/{resp.u.id}", "k", query=True, extra=[RESP])
    assert t.render(r) == "/t/5"
    with pytest.raises(Missing, match="not a string, number or boolean"):
        r(Ref("resp", ("u", "o"), "resp.u.o"))
    with pytest.raises(Missing, match=r"nothing resolves \{resp...\} here"):
        Resolver(c)(Ref("resp", ("u", "id"), "resp.u.id"))
