"""Malformed and ambiguous requests: 400 (or the status h11 hints) and never forwarded.

Each case is sent on a fresh connection, followed by a well-formed request on the
same write: if the gateway had read the bytes differently from a strict parser, the
second request would reach the upstream (request smuggling). It must not.
"""

from __future__ import annotations

import pytest
import trio

from triogate.testing import UpstreamServer, raw_request

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n"

CASES = {
    "cl-and-te": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-and-cl": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n",
    "duplicate-cl-same": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\nabc",
    "duplicate-cl-different": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 40\r\n\r\nabc",
    "cl-list": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3, 3\r\n\r\nabc",
    "cl-plus-sign": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: +3\r\n\r\nabc",
    "cl-hex": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0x3\r\n\r\nabc",
    "cl-space-before-colon": b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length : 3\r\n\r\nabc",
    "te-space-before-colon": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-not-chunked": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n",
    "te-chunked-not-last": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te-duplicate": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-xchunked": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-vertical-tab": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
    "bad-chunk-size": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "negative-chunk-size": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
    "hex-prefixed-chunk-size": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "overflowing-chunk-size": (b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                               b"10000000000000003\r\nabc\r\n0\r\n\r\n"),
    "obs-fold": b"GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n folded\r\n\r\n",
    "obs-fold-tab": b"GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n\tfolded\r\n\r\n",
    "bare-lf-in-headers": b"GET / HTTP/1.1\r\nhost: x\nx-a: 1\r\n\r\n",
    "bare-lf-request-line": b"GET / HTTP/1.1\nhost: x\r\n\r\n",
    "bare-cr-in-value": b"GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\r2\r\n\r\n",
    "space-in-header-name": b"GET / HTTP/1.1\r\nhost: x\r\nx a: 1\r\n\r\n",
    "nul-in-header-name": b"GET / HTTP/1.1\r\nhost: x\r\nx\x00a: 1\r\n\r\n",
    "paren-in-header-name": b"GET / HTTP/1.1\r\nhost: x\r\nx(a): 1\r\n\r\n",
    "empty-header-name": b"GET / HTTP/1.1\r\nhost: x\r\n: 1\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\x002\r\n\r\n",
    "non-ascii-target": "GET /caf\u00e9 HTTP/1.1\r\nhost: x\r\n\r\n".encode("utf-8"),
    "bad-percent-encoding": b"GET /a%zz HTTP/1.1\r\nhost: x\r\n\r\n",
    "truncated-percent-encoding": b"GET /a%2 HTTP/1.1\r\nhost: x\r\n\r\n",
    "dot-dot-above-root": b"GET /../etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n",
    "encoded-dot-dot-above-root": b"GET /a/%2e%2e/%2E%2E/etc HTTP/1.1\r\nhost: x\r\n\r\n",
    "encoded-slash-dot-dot": b"GET /public/..%2Fadmin HTTP/1.1\r\nhost: x\r\n\r\n",
    "backslash-in-path": b"GET /public/..\\admin HTTP/1.1\r\nhost: x\r\n\r\n",
    "fragment-in-target": b"GET /a#b HTTP/1.1\r\nhost: x\r\n\r\n",
    "asterisk-form-get": b"GET * HTTP/1.1\r\nhost: x\r\n\r\n",
    "authority-form-connect": b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
    "absolute-form-ftp": b"GET ftp://x/ HTTP/1.1\r\nhost: x\r\n\r\n",
    "absolute-form-userinfo": b"GET http://user@x/ HTTP/1.1\r\nhost: x\r\n\r\n",
    "multiple-host": b"GET / HTTP/1.1\r\nhost: x\r\nhost: y\r\n\r\n",
    "missing-host-1.1": b"GET / HTTP/1.1\r\nx-a: 1\r\n\r\n",
    "host-with-path": b"GET / HTTP/1.1\r\nhost: x/evil\r\n\r\n",
    "http-version-2-in-h1": b"GET / HTTP/2.0\r\nhost: x\r\n\r\n",
    "http-version-garbage": b"GET / HTTP/1.x\r\nhost: x\r\n\r\n",
    "lowercase-method-with-space": b"GET  / HTTP/1.1\r\nhost: x\r\n\r\n",
    "header-before-request-line": b"host: x\r\nGET / HTTP/1.1\r\n\r\n",
}


EXPECTED = {"te-not-chunked": 501, "te-chunked-not-last": 501, "te-xchunked": 501, "http-version-2-in-h1": 505,
            "te-duplicate": 501}


def config(upstream: UpstreamServer) -> dict:
    return {
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


@pytest.mark.parametrize("name", sorted(CASES))
async def test_malformed_request_is_rejected_and_never_forwarded(name, upstream_factory, gateway_factory):
    completed: list[str] = []

    async def handler(req):
        await req.body.read(1 << 20)
        completed.append(req.path)
        return {"ok": True}

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up))
    raw = await raw_request(gw.port, CASES[name] + SMUGGLED, timeout=3)
    assert raw.startswith(b"HTTP/1.1 "), (name, raw[:300])
    status = int(raw[9:12])
    assert status == EXPECTED.get(name, 400), (name, raw[:300])
    assert b"application/problem+json" in raw
    assert raw.count(b"HTTP/1.1 ") == 1, "the connection must close after a malformed request"
    assert completed == [], name
    assert [r.path for r in up.requests] == [], name


LATER_BAD_CHUNKS = {
    "bad-size": b"3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n",
    "missing-crlf-after-data": b"3\r\nabcX0\r\n\r\n",
    "overflowing-size": b"3\r\nabc\r\n10000000000000003\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(LATER_BAD_CHUNKS))
async def test_bad_chunk_later_in_the_body_never_completes_upstream(name, upstream_factory, gateway_factory):
    """The first chunk was fine, so the request started upstream; it is aborted, never completed."""
    completed: list[bytes] = []

    async def handler(req):
        completed.append(await req.body.read(1 << 20))
        return {"ok": True}

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up))
    raw = await raw_request(gw.port, b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                            + LATER_BAD_CHUNKS[name] + SMUGGLED, timeout=3)
    assert raw.startswith(b"HTTP/1.1 400"), raw[:300]
    assert raw.count(b"HTTP/1.1 ") == 1
    assert completed == []
    assert all(r.path != "/smuggled" for r in up.requests)


async def test_chunk_declaring_more_than_the_body_limit_is_413_before_forwarding(upstream, gateway_factory):
    gw = await gateway_factory({**config(upstream), "gateway": {"limits": {"max_body_bytes": 1000}}})
    raw = await raw_request(gw.port, b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                            b"100000\r\nabc", timeout=3)
    assert raw.startswith(b"HTTP/1.1 413"), raw[:300]
    assert upstream.requests == []


async def test_valid_requests_around_the_edges_are_accepted(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream))
    ok = {
        "chunk-extension": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
        "uppercase-chunk-size": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
        "chunked-trailer": b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
        "absolute-form": b"GET http://example.com/a?b=1 HTTP/1.1\r\nhost: other\r\n\r\n",
        "dot-segments-inside": b"GET /a/b/../c/./d HTTP/1.1\r\nhost: x\r\n\r\n",
        "http-1.0-no-host": b"GET / HTTP/1.0\r\n\r\n",
    }
    for name, data in ok.items():
        if b"HTTP/1.1\r\n" in data.split(b"\r\n", 1)[0] + b"\r\n":
            data = data.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1) if b"chunked" not in data else data
        raw = await raw_request(gw.port, data, timeout=2)
        assert raw.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")), (name, raw[:300])
    paths = [(r.path, r.query, r.headers.get("host")) for r in upstream.requests]
    assert ("/a", "b=1", upstream.url.split("//")[1]) in paths  # absolute-form: the target's path and query
    assert any(p == "/a/c/d" for p, _, _ in paths)
    bodies = [r for r in upstream.requests if r.method == "POST"]
    assert len(bodies) == 3


async def test_absolute_form_authority_is_the_host_that_routes(upstream_factory, gateway_factory):
    a = await upstream_factory()
    b = await upstream_factory()
    gw = await gateway_factory({
        "upstreams": {"a": {"targets": [{"url": a.url}]}, "b": {"targets": [{"url": b.url}]}},
        "routes": {"a": {"hosts": ["a.example"], "upstream": "a"},
                   "b": {"hosts": ["b.example"], "upstream": "b", "preserve_host": True}},
    })
    raw = await raw_request(gw.port, b"GET http://b.example/x HTTP/1.1\r\nhost: a.example\r\nconnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:300]
    assert a.requests == []
    assert [(r.path, r.headers.get("host")) for r in b.requests] == [("/x", "b.example")]


async def test_pipelined_requests_are_answered_in_order(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream))
    data = (b"GET /one HTTP/1.1\r\nhost: x\r\n\r\n"
            b"POST /two HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc"
            b"GET /three HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    raw = await raw_request(gw.port, data, timeout=3)
    assert raw.count(b"HTTP/1.1 200") == 3, raw
    i1, i2, i3 = raw.find(b'"path":"/one"'), raw.find(b'"path":"/two"'), raw.find(b'"path":"/three"')
    assert 0 < i1 < i2 < i3
    assert b'"body":"abc"' in raw
    assert [r.path for r in upstream.requests] == ["/one", "/two", "/three"]


async def test_pipelined_request_after_a_rejected_one_is_not_served(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream))
    raw = await raw_request(gw.port, b"GET /a%zz HTTP/1.1\r\nhost: x\r\n\r\n" + SMUGGLED, timeout=2)
    assert raw.count(b"HTTP/1.1 ") == 1
    assert upstream.requests == []


async def test_request_id_header_on_rejections(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream))
    raw = await raw_request(gw.port, b"GET /a%zz HTTP/1.1\r\nhost: x\r\n\r\n", timeout=2)
    head = raw.split(b"\r\n\r\n")[0].lower()
    assert b"\r\nx-request-id: " in head
    rid = head.split(b"x-request-id: ")[1].split(b"\r\n")[0]
    assert rid in raw


async def test_connection_survives_only_well_formed_requests(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        with trio.fail_after(3):
            got = b""
            while b'"path":"/a"' not in got:
                got += await stream.receive_some(65536)
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\nx a: 1\r\n\r\n")
        rest = b""
        with trio.move_on_after(3):
            while chunk := await stream.receive_some(65536):
                rest += chunk
    assert rest.startswith(b"HTTP/1.1 400")
    assert [r.path for r in upstream.requests] == ["/a"]
