"""Class 7: one normalized authority for routing, the cache key and what the upstream is told.

The finding: a request with ``Host: example:6666`` (or an absolute-form target with another
port) stored a response that plain ``Host: example`` requests were then served, although the
upstream had answered for another origin (absolute links, redirects built from
``X-Forwarded-Host``). The upstream here answers with the authority it was told, so a response
stored for one authority and served for another shows up in the body.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from triogate.testing import raw_request

KEY = "authority-test-key-0123456789"


def _field(head: bytes, name: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        n, _, v = line.partition(b":")
        if n.strip().lower() == name:
            return v.strip()
    return b"-"


def told(cache_control: bytes = b"max-age=600") -> Any:
    """An upstream that answers with the Host and X-Forwarded-Host it received."""

    def respond(head: bytes, conn: Any) -> bytes:
        body = b"host=" + _field(head, b"host") + b" xfh=" + _field(head, b"x-forwarded-host")
        cc = b"cache-control: " + cache_control + b"\r\n" if cache_control else b""
        return b"HTTP/1.1 200 OK\r\n" + cc + b"content-length: %d\r\n\r\n" % len(body) + body

    return respond


def cached_route(upstream: Any, *, cache: dict[str, Any] | None = None, **route: Any) -> dict[str, Any]:
    return {"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
            "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"cache": cache or {}}, **route}}}


@pytest.fixture
def gateway(secure_gateway: Any) -> Any:
    """``secure_gateway`` with the installed plugins (cache, key-auth) loaded."""
    return lambda config: secure_gateway(config, autoload=True)


async def send(port: int, target: bytes, host: bytes | None, extra: bytes = b"") -> tuple[int, bytes]:
    host_line = b"host: " + host + b"\r\n" if host is not None else b""
    raw = await raw_request(port, b"GET " + target + b" HTTP/1.1\r\n" + host_line + extra +
                            b"connection: close\r\n\r\n", timeout=5)
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw[9:12]), raw.partition(b"\r\n\r\n")[2]


def unique_path() -> bytes:
    # the memory store is shared by every gateway of the process: keep each test's entries apart
    return b"/page-" + uuid.uuid4().hex.encode()


ATTACKS = {
    "host-port": lambda path: (path, b"example.com:6666"),
    "absolute-form-port": lambda path: (b"http://example.com:6666" + path, b"example.com"),
}


@pytest.mark.parametrize("preserve_host", [False, True], ids=["x-forwarded-host", "preserve-host"])
@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
async def test_another_port_cannot_fill_the_plain_entry(attack, preserve_host, front, gateway, raw_upstream):
    up = await raw_upstream(told())
    gw = await gateway(cached_route(up, preserve_host=preserve_host))
    path = unique_path()
    target, host = attack(path)
    status, body = await send(gw.port, target, host)
    assert status == 200
    assert b"example.com:6666" in body  # the upstream answered for the authority with the port
    status, body = await send(gw.port, path, b"example.com")
    assert status == 200
    assert b"6666" not in body, body  # never the other authority's stored answer
    assert len(up.heads) == 2
    # and each authority is then answered from its own entry
    assert b"example.com:6666" in (await send(gw.port, target, host))[1]
    assert b"6666" not in (await send(gw.port, path, b"example.com"))[1]
    assert len(up.heads) == 2


EQUIVALENT = [b"EXAMPLE.com", b"example.com.", b"example.com:80", b"Example.Com.:080"]


@pytest.mark.parametrize("host", EQUIVALENT)
async def test_equivalent_authorities_are_one_origin(host, front, gateway, raw_upstream):
    """Case, a trailing dot and the default port do not make another origin: the upstream is told
    the normalized form, and it is the same cache entry."""
    up = await raw_upstream(told())
    gw = await gateway(cached_route(up, preserve_host=True))
    path = unique_path()
    status, body = await send(gw.port, path, host)
    assert (status, body) == (200, b"host=example.com xfh=example.com")
    status, body = await send(gw.port, path, b"example.com")
    assert (status, body) == (200, b"host=example.com xfh=example.com")
    assert len(up.heads) == 1  # the second was a hit of the same key


@pytest.mark.parametrize(("host", "normalized"), [
    (b"[::1]:8080", b"[::1]:8080"), (b"[::1]:80", b"[::1]"), (b"[::1]", b"[::1]"),
    (b"[2001:DB8::1]:443", b"[2001:db8::1]:443"), (b"example.com:8443", b"example.com:8443"),
])
async def test_forwarded_authority_is_normalized(host, normalized, front, gateway, raw_upstream):
    up = await raw_upstream(told(cache_control=b"no-store"))
    gw = await gateway({"upstreams": {"u": {"targets": [{"url": up.url}]}},
                        "routes": {"keep": {"paths": ["/keep"], "upstream": "u", "preserve_host": True},
                                   "target": {"paths": ["/target"], "upstream": "u"}}})
    assert (await send(gw.port, b"/keep", host))[1] == b"host=" + normalized + b" xfh=" + normalized
    assert (await send(gw.port, b"/target", host))[1] == b"host=" + up.url[7:].encode() + b" xfh=" + normalized


HOST_VARIANTS = {
    "trailing-dot": (b"/secret", b"admin.example."),
    "upper-case-trailing-dot": (b"/secret", b"ADMIN.Example."),
    "trailing-dot-default-port": (b"/secret", b"admin.example.:80"),
    "absolute-form-trailing-dot": (b"http://admin.example./secret", b"other.example"),
    "absolute-form-default-port": (b"http://ADMIN.example:80/secret", b"other.example"),
}


@pytest.mark.parametrize(("target", "host"), HOST_VARIANTS.values(), ids=HOST_VARIANTS.keys())
async def test_host_variants_match_the_host_route(target, host, front, gateway, raw_upstream):
    """A host-bound protected route next to a public catch-all: variants of its host are that host."""
    up = await raw_upstream(told(cache_control=b"no-store"))
    gw = await gateway({
        "upstreams": {"u": {"targets": [{"url": up.url}]}},
        "consumers": {"ops": {"credentials": {"key-auth": {"keys": [KEY]}}}},
        "routes": {"admin": {"hosts": ["admin.example"], "upstream": "u", "plugins": {"key-auth": {}},
                             "preserve_host": True},
                   "public": {"paths": ["/"], "upstream": "u"}},
    })
    status, _ = await send(gw.port, target, host)
    assert status == 401
    assert up.heads == []
    status, body = await send(gw.port, target, host, extra=f"x-api-key: {KEY}\r\n".encode())
    assert (status, body) == (200, b"host=admin.example xfh=admin.example")


async def test_cookie_requests_get_no_heuristic_freshness(front, gateway, raw_upstream):
    """No Cache-Control from the origin and default_ttl set: an answer to a request with cookies
    may be personalized, so it is not stored unless the origin says it may be."""
    up = await raw_upstream(told(cache_control=b""))
    gw = await gateway(cached_route(up, cache={"default_ttl": 60.0, "expose_key": True}))
    path = unique_path()
    for who in (b"alice", b"bob"):
        status, _ = await send(gw.port, path, b"example.com", extra=b"cookie: session=" + who + b"\r\n")
        assert status == 200
    assert len(up.heads) == 2
    # without cookies the heuristic applies (the control)
    other = unique_path()
    await send(gw.port, other, b"example.com")
    await send(gw.port, other, b"example.com")
    assert len(up.heads) == 3


async def test_cookie_heuristic_on_request(front, gateway, raw_upstream):
    up = await raw_upstream(told(cache_control=b""))
    gw = await gateway(cached_route(up, cache={"default_ttl": 60.0, "heuristic_with_cookies": True}))
    path = unique_path()
    for who in (b"alice", b"bob"):
        await send(gw.port, path, b"example.com", extra=b"cookie: session=" + who + b"\r\n")
    assert len(up.heads) == 1


async def test_cookie_requests_keep_explicit_freshness(front, gateway, raw_upstream):
    up = await raw_upstream(told(cache_control=b"public, max-age=60"))
    gw = await gateway(cached_route(up, cache={"default_ttl": 60.0}))
    path = unique_path()
    for who in (b"alice", b"bob"):
        await send(gw.port, path, b"example.com", extra=b"cookie: session=" + who + b"\r\n")
    assert len(up.heads) == 1


async def test_http2_authority_is_normalized_and_keyed(gateway_factory, raw_upstream):
    """HTTP/2 :authority gets the same treatment: another port is another cache entry,
    equivalent forms are one, a trailing dot matches the host route."""
    from ._h2 import h2_request

    up = await raw_upstream(told())
    gw = await gateway_factory({
        "gateway": {"listen": [{"address": "127.0.0.1:0", "protocol": "h2"}]},
        "upstreams": {"u": {"targets": [{"url": up.url}]}},
        "consumers": {"ops": {"credentials": {"key-auth": {"keys": [KEY]}}}},
        "routes": {"admin": {"hosts": ["admin.example"], "upstream": "u", "plugins": {"key-auth": {}}},
                   "r": {"paths": ["/"], "upstream": "u", "preserve_host": True, "plugins": {"cache": {}}}},
    }, autoload=True)
    path = unique_path().decode()
    assert (await h2_request(gw.port, "GET", path, "example.com:6666")) == (
        200, b"host=example.com:6666 xfh=example.com:6666")
    assert (await h2_request(gw.port, "GET", path, "Example.COM.:80")) == (200, b"host=example.com xfh=example.com")
    assert (await h2_request(gw.port, "GET", path, "example.com")) == (200, b"host=example.com xfh=example.com")
    assert len(up.heads) == 2
    assert (await h2_request(gw.port, "GET", "/secret", "admin.example."))[0] == 401
    assert len(up.heads) == 2


@pytest.mark.parametrize("host", [b"%61dmin.example", b"admin%2eexample", b"admin.example%00"])
async def test_percent_encoded_host_is_refused(host, front, gateway, raw_upstream):
    up = await raw_upstream(told(cache_control=b"no-store"))
    gw = await gateway({"upstreams": {"u": {"targets": [{"url": up.url}]}},
                        "routes": {"admin": {"hosts": ["admin.example"], "upstream": "u", "methods": ["POST"]},
                                   "public": {"paths": ["/"], "upstream": "u"}}})
    status, body = await send(gw.port, b"/secret", host)
    assert status == 400, body[:200]
    assert up.heads == []
