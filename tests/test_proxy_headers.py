"""Proxy semantics (RFC 9110 §7.6): hop-by-hop fields, Via, X-Forwarded-*/Forwarded with
trusted proxies, Host per route, request ids, trailers."""

from __future__ import annotations

import json
from typing import Any

import trio

from triogate.testing import raw_request
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends


def config(url: str, gateway: dict | None = None, **route: Any) -> dict:
    return {
        "gateway": gateway or {},
        "upstreams": {"u": {"targets": [{"url": url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", **route}},
    }


class RawUpstream:
    """An upstream that records the raw request bytes and answers canned bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._conn, listeners)

    async def _conn(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            with trio.move_on_after(5):
                while True:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    data += chunk
                    head, sep, body = data.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    lower = head.lower()
                    if b"transfer-encoding: chunked" in lower:
                        if body.endswith(b"\r\n\r\n") and (b"\r\n0\r\n" in b"\r\n" + body):
                            break
                    elif b"content-length: " in lower:
                        n = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0])
                        if len(body) >= n:
                            break
                    else:
                        break
            self.received.append(data)
            await stream.send_all(self.answer)


def upstream_head(raw: bytes) -> dict[str, list[str]]:
    head = raw.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    out: dict[str, list[str]] = {}
    for line in head:
        k, _, v = line.partition(":")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


async def test_hop_by_hop_request_headers_are_removed(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    raw = await raw_request(gw.port, b"GET /x HTTP/1.1\r\nhost: x\r\nconnection: keep-alive, x-hop, X-Other-Hop\r\n"
                            b"keep-alive: timeout=5\r\nx-hop: secret\r\nx-other-hop: 2\r\nte: trailers\r\n"
                            b"trailer: x-t\r\nupgrade: h2c\r\nproxy-authorization: Basic Zm9vOmJhcg==\r\n"
                            b"proxy-connection: keep-alive\r\nx-end-to-end: 1\r\nx-end-to-end: 2\r\n"
                            b"accept: application/json\r\n\r\n", read_until_close=False)
    assert raw.startswith(b"HTTP/1.1 200")
    h = upstream.requests[0].headers
    for name in ("connection", "keep-alive", "x-hop", "x-other-hop", "te", "trailer", "upgrade",
                 "proxy-authorization", "proxy-connection"):
        assert name not in h, name
    assert h.get_all("x-end-to-end") == ["1", "2"]
    assert h.get("accept") == "application/json"


async def test_hop_by_hop_response_headers_are_removed(nursery, gateway_factory):
    body = b'{"ok":true}'
    up = RawUpstream(b"HTTP/1.1 200 OK\r\nconnection: x-secret, keep-alive\r\nkeep-alive: timeout=5\r\n"
                     b"x-secret: s3cr3t\r\nproxy-authenticate: Basic\r\nx-kept: yes\r\n"
                     b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
    await nursery.start(up.run)
    gw = await gateway_factory(config(up.url))
    r = await gw.client.get("/x")
    assert r.status == 200
    assert r.content == body
    for name in ("x-secret", "keep-alive", "proxy-authenticate"):
        assert name not in r.headers, name
    assert r.headers.get("x-kept") == "yes"
    assert r.headers.get("via") == "1.1 triogate"


async def test_via_is_appended_both_ways(upstream_factory, gateway_factory):
    from triogate import Response

    async def handler(req):
        return Response.json({"via": req.headers.get_all("via")}, headers=[("via", "1.1 backend")])

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up.url))
    r = await gw.client.get("/x", headers={"via": "1.0 fred"})
    assert r.json()["via"] == ["1.0 fred, 1.1 triogate"]
    assert r.headers.get_all("via") == ["1.1 backend, 1.1 triogate"]
    raw = await raw_request(gw.port, b"GET /x HTTP/1.0\r\nhost: x\r\n\r\n")
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["via"] == ["1.0 triogate"]


async def test_via_can_be_turned_off(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {"via": False}))
    r = await gw.client.get("/x")
    assert "via" not in r.json()["headers"]
    assert "via" not in r.headers


async def test_x_forwarded_from_an_untrusted_client_are_replaced(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    r = await gw.client.get("/x", headers={"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https",
                                           "x-forwarded-host": "evil.example", "host": "api.example:8443"})
    h = r.json()["headers"]
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["api.example:8443"]


async def test_x_forwarded_from_a_trusted_proxy_are_appended(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {"trusted_proxies": ["127.0.0.0/8"]}))
    r = await gw.client.get("/x", headers=[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "10.0.0.1"),
                                           ("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example")])
    h = r.json()["headers"]
    assert h["x-forwarded-for"] == ["1.2.3.4, 10.0.0.1, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["https"]
    assert h["x-forwarded-host"] == ["api.example"]


async def test_client_ip_walks_the_trusted_chain(upstream, gateway_factory):
    from triogate import hookimpl

    seen: list[str] = []

    class Hooks:
        @staticmethod
        @hookimpl
        async def pre_route(ctx):
            seen.append(ctx.client_ip)

    import types

    mod = types.ModuleType("client_ip_hooks")
    mod.pre_route = Hooks.pre_route
    gw = await gateway_factory(config(upstream.url, {"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"]}), hooks=[mod])
    await gw.client.get("/x", headers={"x-forwarded-for": "9.9.9.9, 1.2.3.4, 10.1.1.1"})
    await gw.client.get("/x")
    await gw.client.get("/x", headers={"x-forwarded-for": "not-an-ip"})
    assert seen == ["1.2.3.4", "127.0.0.1", "127.0.0.1"]


async def test_forwarded_mode(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {"forwarded_headers": "forwarded"}))
    r = await gw.client.get("/x", headers={"forwarded": "for=6.6.6.6", "x-forwarded-for": "6.6.6.6",
                                           "host": "api.example"})
    h = r.json()["headers"]
    assert h["forwarded"] == ["for=127.0.0.1;proto=http;host=api.example"]
    assert "x-forwarded-for" not in h  # an untrusted client's X-Forwarded-For is never passed on


async def test_forwarded_mode_from_a_trusted_proxy_appends(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {"forwarded_headers": "both", "trusted_proxies": ["127.0.0.1"]}))
    r = await gw.client.get("/x", headers={"forwarded": 'for="[2001:db8::1]";proto=https', "host": "h"})
    h = r.json()["headers"]
    assert h["forwarded"] == ['for="[2001:db8::1]";proto=https, for=127.0.0.1;proto=http;host=h']
    assert h["x-forwarded-for"] == ["127.0.0.1"]


async def test_forwarding_headers_none_mode_still_drops_spoofed_ones(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {"forwarded_headers": "none"}))
    r = await gw.client.get("/x", headers={"x-forwarded-for": "6.6.6.6", "forwarded": "for=6.6.6.6",
                                           "x-forwarded-proto": "https", "x-forwarded-host": "evil"})
    h = r.json()["headers"]
    for name in ("x-forwarded-for", "forwarded", "x-forwarded-proto", "x-forwarded-host"):
        assert name not in h, name


async def test_host_is_the_targets_by_default_preserved_or_rewritten_per_route(upstream, gateway_factory):
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {
            "default": {"paths": ["/d"], "upstream": "u"},
            "preserve": {"paths": ["/p"], "upstream": "u", "preserve_host": True},
            "rewrite": {"paths": ["/w"], "upstream": "u", "host_header": "backend.internal"},
        },
    })
    hosts = {}
    for p in ("/d", "/p", "/w"):
        r = await gw.client.get(p, headers={"host": "api.example.com"})
        hosts[p] = r.json()["headers"]["host"]
    assert hosts == {"/d": [upstream.url.split("//")[1]], "/p": ["api.example.com"], "/w": ["backend.internal"]}


async def test_request_id_kept_when_valid_else_generated(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    good = "abc-123_DEF.456:789"
    r = await gw.client.get("/x", headers={"x-request-id": good})
    assert r.json()["headers"]["x-request-id"] == [good]
    assert r.headers["x-request-id"] == good
    for bad in ("short", "has space in it", "x" * 300, "semi;colon;inside"):
        r = await gw.client.get("/x", headers={"x-request-id": bad})
        sent = r.json()["headers"]["x-request-id"]
        assert sent != [bad] and len(sent) == 1
        assert r.headers["x-request-id"] == sent[0]
    r1 = await gw.client.get("/x")
    r2 = await gw.client.get("/x")
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]


async def test_request_id_on_gateway_errors_and_overrides_the_upstreams(upstream_factory, gateway_factory):
    from triogate import Response

    async def handler(req):
        return Response.json({}, headers=[("x-request-id", "upstream-made-this-up")])

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up.url))
    r = await gw.client.get("/x", headers={"x-request-id": "client-id-0001"})
    assert r.headers.get_all("x-request-id") == ["client-id-0001"]
    gw2 = await gateway_factory({"routes": {}})
    r = await gw2.client.get("/nothing")
    assert r.status == 404
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_custom_request_id_header(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {"request_id_header": "X-Correlation-ID"}))
    r = await gw.client.get("/x", headers={"x-correlation-id": "corr-12345678"})
    assert r.json()["headers"]["x-correlation-id"] == ["corr-12345678"]
    assert r.headers["x-correlation-id"] == "corr-12345678"


async def test_trailers_are_dropped_both_ways(nursery, gateway_factory):
    up = RawUpstream(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n")
    await nursery.start(up.run)
    gw = await gateway_factory(config(up.url))
    raw = await raw_request(gw.port, b"POST /x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                            b"trailer: x-client-sum\r\nconnection: close\r\n\r\n"
                            b"3\r\nabc\r\n0\r\nx-client-sum: 42\r\n\r\n", timeout=3)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"hello" in body
    assert b"x-checksum" not in raw.lower()
    assert b"trailer" not in head.lower()
    sent = up.received[0].lower()
    assert b"x-client-sum" not in sent
    assert b"trailer:" not in sent
    assert b"abc" in sent


async def test_connection_close_from_the_client_is_honoured(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    raw = await raw_request(gw.port, b"GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                            b"GET /b HTTP/1.1\r\nhost: x\r\n\r\n", timeout=3)
    assert raw.count(b"HTTP/1.1 200") == 1
    assert b"connection: close" in raw.lower()
    assert [r.path for r in upstream.requests] == ["/a"]
    assert "connection" not in upstream.requests[0].headers
