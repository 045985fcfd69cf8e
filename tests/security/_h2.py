"""A minimal HTTP/2 (h2c prior knowledge) client for attack tests: one request per connection,
pseudo-headers exactly as given, so a test controls ``:authority`` and ``:path`` byte for byte."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import trio


async def h2_request(port: int, method: str, path: str, authority: str,
                     headers: list[tuple[str, str]] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """``(status, body)`` of one HTTP/2 request to 127.0.0.1:``port``."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"), (":authority", authority),
                            *(headers or [])], end_stream=True)
    status, body = 0, b""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(conn.data_to_send())
        with trio.fail_after(timeout):
            while True:
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        status = int(dict(ev.headers)[":status"])
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        return status, body
                    elif isinstance(ev, h2.events.StreamReset):
                        return 0, b""
                out = conn.data_to_send()
                if out:
                    await stream.send_all(out)
