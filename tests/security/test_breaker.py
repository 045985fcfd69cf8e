"""Class 5: clients cannot open the circuit breaker.

A header value the upstream serializer would refuse (DEL, other control characters) is
refused at the listener with 400 and never reaches a target; requests a client breaks
(refused fields, a body abandoned or garbled mid-stream) never count as the target's
failures, while a target that really fails still opens its circuit.
"""

from __future__ import annotations

import json

import h2.config
import h2.connection
import h2.events
import pytest
import trio
from triogate import Response
from triogate.testing import raw_request
from triogate.upstream import CircuitState, RequestNotSendable
from triogate_request_transform import RequestTransform

from .conftest import route_to

# RFC 9110 §5.5: VCHAR, obs-text, SP and HTAB only. NUL, VT and FF are refused by both parsers'
# own grammar; the others pass h11's grammar and are refused by the gateway's rule.
CONTROLS = [0x00, 0x01, 0x07, 0x08, 0x0B, 0x0C, 0x0E, 0x1B, 0x1F, 0x7F]


def _breaker(gw):
    return gw.gateway.pipeline.upstreams["u"].targets[0].breaker


def _breaker_config(up, failures: int = 2) -> dict:
    cfg = route_to(up)
    cfg["upstreams"]["u"].update(retries=0, circuit_breaker={"failures": failures, "open_seconds": 30})
    return cfg


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def _assert_problem(raw: bytes, status: int) -> None:
    assert _status(raw) == status, raw[:300]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), raw[:300]
    assert json.loads(body)["request_id"], raw[:300]


@pytest.mark.parametrize("byte", CONTROLS, ids=[f"0x{b:02x}" for b in CONTROLS])
async def test_control_byte_in_header_value_is_refused(front, secure_gateway, raw_upstream, byte):
    up = await raw_upstream()
    gw = await secure_gateway(route_to(up))
    for value in (b"a" + bytes([byte]) + b"b", bytes([byte]) + b"b", b"a" + bytes([byte])):
        raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\nx-evil: " + value + b"\r\n"
                                b"connection: close\r\n\r\n", timeout=3)
        _assert_problem(raw, 400)
    assert up.heads == []  # nothing refused reaches the upstream


async def test_obs_text_and_tab_in_header_values_are_forwarded_intact(front, secure_gateway, raw_upstream):
    """obs-text (0x80-0xff) is allowed by RFC 9110 and must serialize upstream on either parser."""
    up = await raw_upstream()
    gw = await secure_gateway(route_to(up))
    value = b"caf\xe9 \x80\xff\tend"
    raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\nx-latin: " + value + b"\r\n"
                            b"connection: close\r\n\r\n", timeout=3)
    assert _status(raw) == 200, raw[:300]
    assert len(up.heads) == 1
    assert b"\r\nx-latin: " + value + b"\r\n" in up.heads[0]


async def test_refused_header_values_do_not_open_the_circuit(front, secure_gateway, raw_upstream):
    up = await raw_upstream()
    gw = await secure_gateway(_breaker_config(up))
    for i in range(10):
        raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\nx-evil: \x7f%d\r\n"
                                b"connection: close\r\n\r\n" % i, timeout=3)
        _assert_problem(raw, 400)
    breaker = _breaker(gw)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    r = await gw.client.get("/")
    assert r.status == 200 and r.content == b"ok"


async def _abandon_body(port: int, head: bytes, body: bytes, tail: bytes = b"") -> bytes:
    """Send a request head and part of its body (then ``tail``), then close the connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    answer = bytearray()
    try:
        with trio.move_on_after(5):
            await stream.send_all(head + body + tail)
            if tail:  # a garbled body: the gateway answers (400) and closes
                while chunk := await stream.receive_some(65536):
                    answer += chunk
            else:
                await trio.sleep(0.05)  # let the gateway start streaming it upstream
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(answer)


PART = b"x" * (2 << 20)  # past any first part the gateway buffers before it picks a target


async def test_bodies_abandoned_mid_stream_do_not_open_the_circuit(front, secure_gateway, raw_upstream):
    up = await raw_upstream()
    gw = await secure_gateway(_breaker_config(up))
    head = b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (10 * len(PART))
    for _ in range(6):
        await _abandon_body(gw.port, head, PART)
    with trio.fail_after(5):  # the gateway notices each abort and lets go of the upstream connection
        while len(up.heads) < 6 or len(up.connections) < 6:
            await trio.sleep(0.02)
    await trio.sleep(0.1)
    breaker = _breaker(gw)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    for _ in range(3):
        r = await gw.client.get("/")  # other clients are served
        assert r.status == 200 and r.content == b"ok"


async def test_garbled_chunked_bodies_do_not_open_the_circuit(front, secure_gateway, raw_upstream):
    up = await raw_upstream()
    gw = await secure_gateway(_breaker_config(up))
    head = b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = b"%x\r\n%b\r\n" % (len(PART), PART)
    for _ in range(6):
        await _abandon_body(gw.port, head, chunks, tail=b"zz\r\nbad chunk\r\n")
    await trio.sleep(0.1)
    breaker = _breaker(gw)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    for _ in range(3):
        r = await gw.client.get("/")
        assert r.status == 200 and r.content == b"ok"


async def test_clients_that_go_away_while_waiting_do_not_open_the_circuit(front, secure_gateway, upstream_factory):
    """A client that hangs up before the (slow but healthy) target answers cancels nothing of the target's."""

    async def slow(req):
        await trio.sleep(0.3)
        return Response(200, [("content-type", "text/plain")], b"ok")

    up = await upstream_factory(slow)
    gw = await secure_gateway(_breaker_config(up))
    for _ in range(5):
        stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
        await stream.send_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        await trio.sleep(0.05)
        await trio.aclose_forcefully(stream)
    await trio.sleep(0.4)
    breaker = _breaker(gw)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    r = await gw.client.get("/")
    assert r.status == 200 and r.content == b"ok"


async def test_values_a_plugin_builds_from_client_input_do_not_open_the_circuit(front, secure_gateway, raw_upstream):
    """A client cannot smuggle a DEL in through a template either (``%7F`` in a query parameter)."""
    up = await raw_upstream()
    cfg = _breaker_config(up)
    cfg["routes"]["r"]["plugins"] = {"request-transform": {"add": {"headers": {"x-q": "{query.q}"}}}}
    gw = await secure_gateway(cfg, plugins={"request-transform": RequestTransform})
    for i in range(6):
        raw = await raw_request(gw.port, b"GET /?q=a%%7F%d HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % i,
                                timeout=3)
        assert _status(raw) == 200, raw[:300]  # the rule does nothing, as for any value it cannot send
    assert len(up.heads) == 6 and not any(b"\x7f" in h or b"x-q:" in h for h in up.heads)
    breaker = _breaker(gw)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0


async def test_a_request_the_gateway_cannot_serialize_is_not_the_targets_fault(front, secure_gateway, raw_upstream):
    """A field the gateway itself got wrong (a plugin, a hook) is a 500 that sends nothing and counts nothing."""
    up = await raw_upstream()
    gw = await secure_gateway(_breaker_config(up))
    upstream = gw.gateway.pipeline.upstreams["u"]
    for _ in range(4):
        with pytest.raises(RequestNotSendable) as caught:
            await upstream.request("GET", "/", [(b"x-bad", b"a\x7fb")])
        assert caught.value.status == 500
    assert up.heads == []
    breaker = _breaker(gw)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    r = await gw.client.get("/")
    assert r.status == 200 and r.content == b"ok"


@pytest.mark.parametrize("fault", ["refused", "invalid-response"])
async def test_a_failing_target_still_opens_the_circuit(front, secure_gateway, raw_upstream, fault):
    if fault == "refused":
        probe = trio.socket.socket()
        await probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        probe.close()  # nothing listens there any more: connection refused
    else:
        up = await raw_upstream(lambda head, conn: b"garbage, not HTTP\r\n\r\n")
        url = up.url
    gw = await secure_gateway({"upstreams": {"u": {"targets": [{"url": url}], "retries": 0,
                                                   "circuit_breaker": {"failures": 2, "open_seconds": 30}}},
                               "routes": {"r": {"paths": ["/"], "upstream": "u"}}})
    breaker = _breaker(gw)
    for _ in range(2):
        assert breaker.state is CircuitState.CLOSED
        assert (await gw.client.get("/")).status == 502
    assert breaker.state is CircuitState.OPEN
    r = await gw.client.get("/")
    assert r.status == 503 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("byte", [0x01, 0x1F, 0x7F], ids=["0x01", "0x1f", "0x7f"])
async def test_control_byte_in_an_http2_header_value_is_refused(gateway_factory, raw_upstream, byte):
    """HTTP/2 requests on the h2 listener pass the same field rule (h2 itself refuses only CR, LF, NUL)."""
    up = await raw_upstream()
    cfg = _breaker_config(up)
    cfg["gateway"] = {"listen": [{"address": "127.0.0.1:0", "protocol": "h2"}]}
    gw = await gateway_factory(cfg)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True,
                                                                       validate_outbound_headers=False))
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
                          (b":authority", b"localhost"), (b"x-evil", b"a" + bytes([byte]) + b"b")], end_stream=True)
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    headers: dict[bytes, bytes] = {}
    body = b""
    async with stream:
        await stream.send_all(conn.data_to_send())
        with trio.fail_after(5):
            ended = False
            while not ended:
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        headers = dict(ev.headers)
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                    elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                        ended = True
                await stream.send_all(conn.data_to_send())
    assert headers.get(b":status") == b"400", (headers, body)
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["request_id"]
    assert up.heads == []
    assert _breaker(gw).failures == 0
