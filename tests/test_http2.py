"""HTTP/2 listener (protocol = "h2", served by hypercorn): h2c prior knowledge and TLS ALPN,
with the h2 library as the client; the upstream side stays HTTP/1.1."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import trio

from triogate.testing import raw_request


def self_signed(tmp: Path) -> tuple[str, str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_tls_helpers", Path(__file__).with_name("test_tls.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.self_signed(tmp)


def config(upstream_url: str, listener: dict) -> dict:
    return {
        "gateway": {"listen": [{"address": "127.0.0.1:0", "protocol": "h2", **listener}]},
        "upstreams": {"u": {"targets": [{"url": upstream_url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def h2_requests(stream: trio.abc.Stream, requests: list[tuple[str, str, bytes]],
                      scheme: str = "http") -> dict[int, tuple[dict[str, str], bytes]]:
    """Send all requests concurrently on one connection; return {stream_id: (headers, body)}."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    ids = []
    for method, path, body in requests:
        sid = conn.get_next_available_stream_id()
        ids.append(sid)
        headers = [(":method", method), (":path", path), (":scheme", scheme), (":authority", "localhost"),
                   ("x-test", "h2")]
        if body:
            headers.append(("content-length", str(len(body))))
        conn.send_headers(sid, headers, end_stream=not body)
        if body:
            conn.send_data(sid, body, end_stream=True)
    await stream.send_all(conn.data_to_send())
    results: dict[int, tuple[dict[str, str], bytes]] = {sid: ({}, b"") for sid in ids}
    ended: set[int] = set()
    with trio.fail_after(5):
        while ended != set(ids):
            data = await stream.receive_some(65536)
            assert data, "connection closed"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    results[ev.stream_id] = (dict(ev.headers), results[ev.stream_id][1])
                elif isinstance(ev, h2.events.DataReceived):
                    h, b = results[ev.stream_id]
                    results[ev.stream_id] = (h, b + ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)
    return results


async def test_h2c_prior_knowledge(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        results = await h2_requests(stream, [("GET", "/a?x=1", b""), ("POST", "/b", b"hello h2"),
                                             ("GET", "/c", b"")])
    bodies = {}
    for headers, body in results.values():
        assert headers[":status"] == "200"
        assert headers["x-request-id"]
        doc = json.loads(body)
        bodies[doc["path"]] = doc
    assert set(bodies) == {"/a", "/b", "/c"}
    assert bodies["/a"]["query"] == "x=1"
    assert bodies["/b"]["body"] == "hello h2"
    assert bodies["/b"]["headers"]["x-test"] == ["h2"]
    assert bodies["/a"]["headers"]["via"] == ["2 triogate"]
    assert all(r.http_version == "1.1" for r in upstream.requests)


async def test_h2_gateway_errors_and_bad_paths(upstream, gateway_factory):
    gw = await gateway_factory({**config(upstream.url, {}), "routes": {"r": {"paths": ["/api"], "upstream": "u"}}})
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        results = await h2_requests(stream, [("GET", "/nope", b""), ("GET", "/api/../../etc", b""),
                                             ("GET", "/api/a%zz", b"")])
    statuses = sorted(h[":status"] for h, _ in results.values())
    assert statuses == ["400", "400", "404"]
    assert upstream.requests == []


async def test_h2_over_tls_with_alpn(tmp_path, upstream, gateway_factory):
    cert, key = self_signed(tmp_path)
    gw = await gateway_factory(config(upstream.url, {"tls_cert": cert, "tls_key": key}))
    ctx = ssl.create_default_context(cafile=cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", gw.port, ssl_context=ctx)
    async with stream:
        await stream.do_handshake()
        assert stream.selected_alpn_protocol() == "h2"
        results = await h2_requests(stream, [("GET", "/tls", b"")], scheme="https")
    headers, body = next(iter(results.values()))
    assert headers[":status"] == "200"
    assert json.loads(body)["headers"]["x-forwarded-proto"] == ["https"]


async def test_h2_listener_still_speaks_http11(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url, {}))
    raw = await raw_request(gw.port, b"GET /one HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", timeout=3)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
