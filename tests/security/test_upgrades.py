"""Upgrade tunnels only where a route allows them (issue 10, class 2).

The finding: ``Upgrade: h2c`` to a public route whose upstream speaks h2c opened a tunnel
through which HTTP/2 requests reached any path of that upstream. The upstream here switches
to whatever protocol it is offered (and says who switched), and records every byte, so a
tunnel would show as bytes the client sent after the switch arriving at the upstream.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from triogate.config import ConfigError, parse_config

from .conftest import OK_RESPONSE, RawConnection, route_to

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2C_REQUEST = (b"GET /public HTTP/1.1\r\nhost: gw\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
               b"http2-settings: AAMAAABkAAQAAP__\r\n\r\n")


def switching(head: bytes, conn: RawConnection) -> bytes:
    """An upstream that switches to the first protocol it is offered, and answers 200 otherwise."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade":
            proto = value.split(b",")[0].strip()
            return (b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: " + proto
                    + b"\r\nx-switched-by: upstream\r\n\r\n")
    return OK_RESPONSE


def always_h2c(head: bytes, conn: RawConnection) -> bytes:
    """A misbehaving upstream: 101 to h2c whatever it was asked."""
    return b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\nx-switched-by: upstream\r\n\r\n"


def fields(head: bytes) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for line in head.split(b"\r\n")[1:]:
        if line:
            name, _, value = line.partition(b":")
            out.setdefault(name.strip().lower(), []).append(value.strip())
    return out


async def exchange(port: int, first: bytes, then: bytes) -> tuple[bytes, bytes]:
    """Send ``first``, read the answer's head (and a little more), send ``then`` on the same connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    answer = bytearray()
    after = bytearray()
    try:
        await stream.send_all(first)
        with trio.move_on_after(3):
            while b"\r\n\r\n" not in answer:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                answer += chunk
        with trio.move_on_after(0.2):  # a body that came with the head
            while chunk := await stream.receive_some(65536):
                answer += chunk
        try:
            await stream.send_all(then)
            with trio.move_on_after(1):
                while chunk := await stream.receive_some(65536):
                    after += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(answer), bytes(after)


async def test_h2c_is_never_forwarded_and_opens_no_tunnel(front, secure_gateway, raw_upstream):
    up = await raw_upstream(switching)
    gw = await secure_gateway(route_to(up))
    answer, _ = await exchange(gw.port, H2C_REQUEST, PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    assert b"x-switched-by: upstream" not in answer, answer[:400]
    assert answer.startswith(b"HTTP/1.1 200"), answer[:400]
    assert len(up.heads) == 1
    got = fields(up.heads[0])
    assert b"upgrade" not in got and b"http2-settings" not in got and b"connection" not in got, up.heads[0]
    await trio.sleep(0.1)
    assert PREFACE not in up.data  # nothing the client sent afterwards was tunnelled


@pytest.mark.parametrize(("offer", "route"), [
    (b"websocket", {"upgrades": []}),
    (b"foo/1.0", {}),
    (b"h2c", {"upgrades": ["websocket", "foo"]}),
    (b"WebSocket", {"upgrades": ["foo"]}),
])
async def test_a_disallowed_upgrade_is_forwarded_as_a_plain_request(front, secure_gateway, raw_upstream, offer, route):
    up = await raw_upstream(switching)
    gw = await secure_gateway(route_to(up, **route))
    request = (b"GET /chat HTTP/1.1\r\nhost: gw\r\nconnection: Upgrade\r\nupgrade: " + offer + b"\r\n"
               b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
    answer, _ = await exchange(gw.port, request, b"after the switch")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:400]
    assert len(up.heads) == 1
    got = fields(up.heads[0])
    assert b"upgrade" not in got and b"connection" not in got, up.heads[0]
    await trio.sleep(0.1)
    assert b"after the switch" not in up.data


@pytest.mark.parametrize("allowed", [["websocket"], ["WebSocket"], ["websocket", "foo"]])
async def test_an_allowed_upgrade_is_tunnelled(front, secure_gateway, raw_upstream, allowed):
    up = await raw_upstream(switching)
    gw = await secure_gateway(route_to(up, upgrades=allowed))
    request = (b"GET /chat HTTP/1.1\r\nhost: gw\r\nconnection: keep-alive, Upgrade\r\nupgrade: h2c, websocket\r\n"
               b"http2-settings: AAMAAABkAAQAAP__\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"sec-websocket-version: 13\r\n\r\n")
    answer, _ = await exchange(gw.port, request, b"tunnelled bytes")
    assert answer.startswith(b"HTTP/1.1 101"), answer[:400]
    got = fields(up.heads[0])
    assert got[b"upgrade"] == [b"websocket"]  # h2c was dropped from the offer
    assert got[b"connection"] == [b"upgrade"]
    assert b"http2-settings" not in got
    with trio.fail_after(3):
        while b"tunnelled bytes" not in up.data:
            await trio.sleep(0.02)


async def test_upstream_switching_without_an_offer_is_502_and_no_tunnel(front, secure_gateway, raw_upstream):
    up = await raw_upstream(always_h2c)
    gw = await secure_gateway(route_to(up))
    answer, _ = await exchange(gw.port, b"GET /public HTTP/1.1\r\nhost: gw\r\n\r\n", PREFACE)
    assert answer.startswith(b"HTTP/1.1 502"), answer[:400]
    assert b"application/problem+json" in answer and b"request_id" in answer
    assert b"x-switched-by" not in answer
    await trio.sleep(0.1)
    assert PREFACE not in up.data


async def test_upstream_switching_to_a_protocol_not_offered_is_502(front, secure_gateway, raw_upstream):
    up = await raw_upstream(always_h2c)
    gw = await secure_gateway(route_to(up))
    request = (b"GET /chat HTTP/1.1\r\nhost: gw\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
               b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
    answer, _ = await exchange(gw.port, request, PREFACE)
    assert answer.startswith(b"HTTP/1.1 502"), answer[:400]
    assert fields(up.heads[0])[b"upgrade"] == [b"websocket"]
    await trio.sleep(0.1)
    assert PREFACE not in up.data


def _route(**route: Any) -> dict[str, Any]:
    return {"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:9"}]}},
            "routes": {"r": {"paths": ["/"], "upstream": "u", **route}}}


@pytest.mark.parametrize("value", ["h2c", "H2C", "h2c/2"])
def test_h2c_cannot_be_configured(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_route(upgrades=["websocket", value]), "gw.toml")
    assert any(e.startswith("routes.r.upgrades[1]: h2c is never tunnelled") for e in info.value.errors), \
        info.value.errors


def test_upgrades_must_be_protocol_tokens() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_route(upgrades=["web socket"]), "gw.toml")
    assert any(e.startswith("routes.r.upgrades[0]:") for e in info.value.errors), info.value.errors


def test_upgrades_default_to_websocket_only() -> None:
    cfg = parse_config(_route(), "gw.toml")
    assert cfg.routes["r"].upgrades == ["websocket"]
