"""The harness itself: the recording upstream sees exactly what a plain request forwards."""

from __future__ import annotations

from triogate.testing import raw_request

from .conftest import route_to


async def test_recording_upstream_sees_the_forwarded_request(front, secure_gateway, raw_upstream):
    up = await raw_upstream()
    gw = await secure_gateway(route_to(up))
    raw = await raw_request(gw.port, b"GET /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", timeout=3)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:300]
    assert len(up.heads) == 1
    assert up.heads[0].startswith(b"GET /hello HTTP/1.1\r\n")
