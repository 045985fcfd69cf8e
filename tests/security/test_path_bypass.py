"""Class 8: paths that upstreams normalize differently must not bypass a protected route.

Setup as the finding had it: a protected route ``/admin`` (key-auth: 401 without a key) and a
public catch-all ``/`` to the SAME upstream. Every form below is something an upstream server
may read as ``/admin/...`` (Tomcat/Spring drop ``;`` parameters, many servers decode ``%2F`` and
``%5C`` or treat ``\\`` as ``/``, IIS and some frameworks strip trailing dots, case-insensitive
file systems and routers, HEAD served by a GET handler). Each must be refused with 400 or land
on the protected route; the recording upstream must never see it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from triogate.testing import raw_request

from .conftest import OK_RESPONSE

KEY = "path-bypass-key-0123456789"


def answer(head: bytes, conn: Any) -> bytes:
    """200 "ok"; headers only for HEAD, as an upstream must."""
    return OK_RESPONSE[:-2] if head.startswith(b"HEAD ") else OK_RESPONSE


def protected(upstream: Any, admin: dict[str, Any] | None = None, public: dict[str, Any] | None = None,
              gateway: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "consumers": {"ops": {"credentials": {"key-auth": {"keys": [KEY]}}}},
        "routes": {
            "admin": {"paths": ["/admin"], "upstream": "u", "plugins": {"key-auth": {}}, **(admin or {})},
            "public": {"paths": ["/"], "upstream": "u", **(public or {})},
        },
    }
    if gateway:
        cfg["gateway"] = gateway
    return cfg


async def send(port: int, target: bytes, *, method: bytes = b"GET", host: bytes = b"gw.example",
               extra: bytes = b"") -> tuple[int, bytes]:
    raw = await raw_request(port, method + b" " + target + b" HTTP/1.1\r\nhost: " + host +
                            b"\r\n" + extra + b"connection: close\r\n\r\n", timeout=5)
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw[9:12]), raw


@pytest.fixture
def gateway(secure_gateway: Any) -> Any:
    """``secure_gateway`` with the installed plugins (key-auth) loaded."""
    return lambda config: secure_gateway(config, autoload=True)


def problem_of(raw: bytes) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), head
    return json.loads(body)


BYPASSES = {
    # ";" path parameters (Tomcat, Spring, Jetty drop them before routing)
    "matrix-after-prefix": b"/admin;x/secret",
    "matrix-empty": b"/admin;/secret",
    "matrix-jsessionid": b"/admin;jsessionid=1",
    "matrix-on-parent": b"/x;y/../admin/secret",
    "matrix-encoded": b"/admin%3Bx/secret",
    "matrix-encoded-lower": b"/admin%3bx/secret",
    # encoded "/" and "\" (decoded by many servers before routing)
    "encoded-slash": b"/admin%2Fsecret",
    "encoded-slash-lower": b"/admin%2fsecret",
    "encoded-leading-slash": b"/%2Fadmin/secret",
    "encoded-backslash": b"/admin%5Csecret",
    "encoded-backslash-lower": b"/admin%5csecret",
    # a raw "\" (Windows servers and some frameworks read it as "/")
    "backslash": b"/admin\\secret",
    "leading-backslash": b"/\\admin/secret",
    # segments ending in "." (IIS, Windows file systems strip them)
    "trailing-dot-segment": b"/admin./secret",
    "trailing-dot-end": b"/admin.",
    "trailing-dots": b"/admin../secret",
    "trailing-encoded-dot": b"/admin%2E/secret",
    "trailing-dot-and-matrix": b"/admin.;x/secret",
    # forms the normalizer already folds into /admin (so they reach the protected route)
    "percent-encoded-letter": b"/%61dmin/secret",
    "dot-dot": b"/public/../admin/secret",
    "encoded-dot-dot": b"/public/%2e%2e/admin/secret",
    "double-slash": b"//admin/secret",
    "dot-segment": b"/./admin/secret",
}


@pytest.mark.parametrize("target", BYPASSES.values(), ids=BYPASSES.keys())
async def test_bypass_forms_never_reach_the_upstream(target, front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway(protected(up))
    status, raw = await send(gw.port, target)
    assert status in (400, 401), raw[:300]
    doc = problem_of(raw)
    assert doc["request_id"] and doc["status"] == status
    assert up.heads == [], up.heads


async def test_the_setup_can_fail(front, gateway, raw_upstream):
    """Controls: the public route does forward, and the protected one with its key."""
    up = await raw_upstream(answer)
    gw = await gateway(protected(up))
    assert (await send(gw.port, b"/admin/secret"))[0] == 401
    assert (await send(gw.port, b"/adminx/page"))[0] == 200  # another path, not below /admin
    assert (await send(gw.port, b"/admin/secret", extra=f"x-api-key: {KEY}\r\n".encode()))[0] == 200
    assert [h.split(b" ")[1] for h in up.heads] == [b"/adminx/page", b"/admin/secret"]


CASE_VARIANTS = [b"/ADMIN/secret", b"/Admin", b"/aDmIn/x/../secret", b"/%41DMIN/secret"]


@pytest.mark.parametrize("target", CASE_VARIANTS)
async def test_case_variants_reach_a_case_insensitive_route(target, front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway(protected(up, admin={"case_insensitive": True}))
    status, raw = await send(gw.port, target)
    assert status == 401, raw[:300]
    assert up.heads == []


async def test_case_insensitive_route_forwards_the_clients_case(front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway(protected(up, admin={"case_insensitive": True, "strip_prefix": "/admin"}))
    status, raw = await send(gw.port, b"/ADMIN/Secret", extra=f"x-api-key: {KEY}\r\n".encode())
    assert status == 200, raw[:300]
    assert up.heads[0].startswith(b"GET /Secret HTTP/1.1\r\n")


async def test_paths_stay_case_sensitive_by_default(front, gateway, raw_upstream):
    """Default: /ADMIN is another path (the upstream must be case-sensitive too; see docs/security.md)."""
    up = await raw_upstream(answer)
    gw = await gateway(protected(up))
    assert (await send(gw.port, b"/ADMIN/secret"))[0] == 200
    assert up.heads[0].startswith(b"GET /ADMIN/secret HTTP/1.1\r\n")


async def test_head_on_a_get_only_route_is_that_route(front, gateway, raw_upstream):
    """RFC 9110 §9.3.2: HEAD is GET without a body. A GET-only protected route that did not match
    HEAD let HEAD /admin/... fall through to the public catch-all."""
    up = await raw_upstream(answer)
    gw = await gateway(protected(up, admin={"methods": ["GET"]}))
    status, raw = await send(gw.port, b"/admin/secret", method=b"HEAD")
    assert status == 401, raw[:300]
    assert up.heads == []
    status, raw = await send(gw.port, b"/admin/secret", method=b"HEAD", extra=f"x-api-key: {KEY}\r\n".encode())
    assert status == 200, raw[:300]
    assert raw.endswith(b"\r\n\r\n")  # no body for HEAD
    assert [h.split(b" ")[0] for h in up.heads] == [b"HEAD"]
    assert (await send(gw.port, b"/admin/secret", method=b"POST", extra=b"content-length: 0\r\n"))[0] == 200
    assert up.heads[-1].startswith(b"POST /admin/secret ")  # other methods: the public route, as configured


async def test_get_route_answers_head_and_allow_lists_it(front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway({"upstreams": {"u": {"targets": [{"url": up.url}]}},
                               "routes": {"r": {"paths": ["/reports"], "methods": ["GET"], "upstream": "u"}}})
    status, raw = await send(gw.port, b"/reports/1", method=b"HEAD")
    assert status == 200, raw[:300]
    status, raw = await send(gw.port, b"/reports/1", method=b"DELETE")
    assert status == 405 and b"\r\nallow: GET, HEAD\r\n" in raw, raw[:300]
    assert [h.split(b" ")[0] for h in up.heads] == [b"HEAD"]


async def test_matrix_params_allowed_route_is_matched_without_them(front, gateway, raw_upstream):
    """A route that allows ';' parameters is matched on the path without them (the view of Tomcat
    or Spring) and gets them forwarded; a public route allowing them cannot be used to reach
    /admin, which does not."""
    up = await raw_upstream(answer)
    gw = await gateway(protected(up, admin={"allow_matrix_params": True},
                                        public={"allow_matrix_params": True}))
    assert (await send(gw.port, b"/admin;v=1/secret"))[0] == 401
    assert (await send(gw.port, b"/x;y/../admin/secret"))[0] == 401
    status, _ = await send(gw.port, b"/admin;v=1/secret", extra=f"x-api-key: {KEY}\r\n".encode())
    assert status == 200
    assert (await send(gw.port, b"/files;v=2/a"))[0] == 200
    assert [h.split(b" ")[1] for h in up.heads] == [b"/admin;v=1/secret", b"/files;v=2/a"]

    up2 = await raw_upstream(answer)
    gw2 = await gateway(protected(up2, public={"allow_matrix_params": True}))
    status, raw = await send(gw2.port, b"/admin;x/secret")
    assert status == 400 and "allow_matrix_params" in problem_of(raw)["detail"], raw[:300]
    assert (await send(gw2.port, b"/files;v=2/a"))[0] == 200
    assert [h.split(b" ")[1] for h in up2.heads] == [b"/files;v=2/a"]


async def test_matrix_params_survive_strip_prefix(front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway({"upstreams": {"u": {"targets": [{"url": up.url}]}},
                               "routes": {"r": {"paths": ["/api"], "upstream": "u", "strip_prefix": "/api",
                                                "allow_matrix_params": True}}})
    assert (await send(gw.port, b"/api;v=1/users;page=2"))[0] == 200
    assert up.heads[0].startswith(b"GET /users;page=2 HTTP/1.1\r\n")


async def test_encoded_slash_kept_on_request_stays_encoded(front, gateway, raw_upstream):
    """gateway.paths.encoded_slash = "keep": one segment for routing, forwarded encoded, never decoded."""
    up = await raw_upstream(answer)
    gw = await gateway(protected(up, gateway={"paths": {"encoded_slash": "keep"}}))
    assert (await send(gw.port, b"/files/a%2fb"))[0] == 200
    assert up.heads[0].startswith(b"GET /files/a%2Fb HTTP/1.1\r\n")
    assert (await send(gw.port, b"/admin./x"))[0] == 400  # the other checks still hold
    assert len(up.heads) == 1


async def test_trailing_dot_kept_on_request(front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway(protected(up, gateway={"paths": {"trailing_dot": "keep"}}))
    assert (await send(gw.port, b"/files/report."))[0] == 200
    assert up.heads[0].startswith(b"GET /files/report. HTTP/1.1\r\n")
    assert (await send(gw.port, b"/admin%2Fx"))[0] == 400
    assert len(up.heads) == 1


async def test_ordinary_dots_are_not_refused(front, gateway, raw_upstream):
    up = await raw_upstream(answer)
    gw = await gateway(protected(up))
    for target in (b"/v1.0/items", b"/files/a.txt", b"/.well-known/x", b"/a/./b/", b"/a/b/.."):
        assert (await send(gw.port, target))[0] == 200, target
    assert [h.split(b" ")[1] for h in up.heads] == [b"/v1.0/items", b"/files/a.txt", b"/.well-known/x",
                                                     b"/a/b/", b"/a/"]


H2_BYPASSES = [t.decode() for t in BYPASSES.values()] + [t.decode() for t in CASE_VARIANTS]


async def test_bypass_forms_over_http2(gateway_factory, raw_upstream):
    """The same forms as HTTP/2 :path values (HTTP/2 has no HTTP/1.1 parser in front of them)."""
    from ._h2 import h2_request

    up = await raw_upstream(answer)
    gw = await gateway_factory({**protected(up, admin={"case_insensitive": True, "methods": ["GET"]}),
                                "gateway": {"listen": [{"address": "127.0.0.1:0", "protocol": "h2"}]}},
                               autoload=True)
    for path in H2_BYPASSES:
        status, body = await h2_request(gw.port, "GET", path, "gw.example")
        assert status in (400, 401), (path, status, body[:200])
    assert (await h2_request(gw.port, "HEAD", "/admin/secret", "gw.example"))[0] == 401
    assert up.heads == []
    assert (await h2_request(gw.port, "GET", "/admin/secret", "gw.example", [("x-api-key", KEY)]))[0] == 200
    assert len(up.heads) == 1
