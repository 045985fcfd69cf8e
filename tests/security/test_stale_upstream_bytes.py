"""Class 6: stale upstream bytes never reach another client.

A misbehaving upstream writes more than the response it was asked for: bytes after a HEAD
response, a 204, a 304 or a Content-Length body (here a whole forged second response).
The pooled connection must not be reused, whether the extra bytes came with the response or
a moment later, and however soon the next request comes: the next client's request goes out
on a fresh connection and gets the real answer. The upstream client uses the parser the
gateway is configured with (``front`` sets it), so both client backends are attacked.
"""

from __future__ import annotations

import importlib.util
import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
from triogate.testing import raw_request

from .conftest import RawConnection, route_to

FORGED = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\npwned"
PARTIAL = b"HTTP/1.1 200 OK\r\ncontent-type: text/pl"  # the start of a forged head
REAL = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nreal"

# kind -> (method of the first request, the upstream's exact answer to it, status the client sees)
FIRST = {
    "head": ("HEAD", b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\n", 200),
    "204": ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", 204),
    "304": ("GET", b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n\r\n', 304),
    "content-length": ("GET", b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok", 200),
}


class _Corked(trio.abc.Stream):
    """A transport that holds writes while corked: several TLS records leave in one TCP write."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.held: bytearray | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.held is not None:
            self.held += data
        else:
            await self.inner.send_all(data)

    async def uncork(self) -> None:
        held, self.held = self.held, None
        if held:
            await self.inner.send_all(bytes(held))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class MisbehavingUpstream:
    """Answers ``/first`` with ``first``, then with ``extra``: in the same write (``delay`` None),
    in a second write right after (0; over TLS a second record, sent in the same TCP write as
    the first) or ``delay`` seconds later.
    Answers every other request with :data:`REAL`. Records every byte; TLS with ``ssl_context``."""

    def __init__(self, first: bytes, extra: bytes, delay: float | None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.first, self.extra, self.delay = first, extra, delay
        self.ssl_context = ssl_context
        self.connections: list[RawConnection] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, stream: trio.abc.Stream) -> None:
        transport = _Corked(stream)
        if self.ssl_context is not None:
            stream = trio.SSLStream(transport, self.ssl_context, server_side=True)
        conn = RawConnection()
        self.connections.append(conn)
        pending = bytearray()
        try:
            while chunk := await stream.receive_some(65536):
                conn.data += chunk
                pending += chunk
                while (end := pending.find(b"\r\n\r\n")) >= 0:  # bodiless requests only
                    head = bytes(pending[:end + 4])
                    del pending[:end + 4]
                    conn.heads.append(head)
                    if b" /first " not in head:
                        await stream.send_all(REAL)
                    elif self.delay is None:
                        await stream.send_all(self.first + self.extra)
                    elif self.delay == 0:
                        transport.held = bytearray()
                        await stream.send_all(self.first)
                        await stream.send_all(self.extra)
                        await transport.uncork()
                    else:
                        await stream.send_all(self.first)
                        await trio.sleep(self.delay)
                        await stream.send_all(self.extra)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            await trio.aclose_forcefully(stream)


async def _ask(port: int, method: str, path: str) -> tuple[int, bytes]:
    raw = await raw_request(port, b"%s %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                            % (method.encode(), path.encode()), timeout=3)
    assert raw.startswith(b"HTTP/1.1 "), raw[:300]
    body = raw.partition(b"\r\n\r\n")[2]
    return int(raw.split(b" ", 2)[1]), body


async def _attack(nursery, start_gateway, kind: str, extra: bytes, delay: float | None, pause: float,
                  ssl_context: ssl.SSLContext | None = None) -> None:
    method, answer, status = FIRST[kind]
    up = MisbehavingUpstream(answer, extra, delay, ssl_context)
    await nursery.start(up.run)
    cfg = route_to(up)
    if ssl_context is not None:
        cfg["upstreams"]["u"]["tls_verify"] = False
    gw = await start_gateway(cfg)
    first_status, first_body = await _ask(gw.port, method, "/first")
    assert first_status == status
    assert b"pwned" not in first_body
    await trio.sleep(pause)
    for i in range(3):  # the next clients: every one gets the real answer
        got_status, body = await _ask(gw.port, "GET", f"/next{i}")
        assert (got_status, body) == (200, b"real"), body
    # the poisoned connection carried nothing more: /next0 went out on a fresh connection
    assert [h.split(b" ")[1] for h in up.connections[0].heads] == [b"/first"]
    assert up.connections[1].heads[0].startswith(b"GET /next0 ")


@pytest.mark.parametrize("kind", list(FIRST))
@pytest.mark.parametrize("pause", [0.0, 0.05], ids=["immediately", "after-50ms"])
async def test_extra_bytes_with_the_response(front, secure_gateway, nursery, kind, pause):
    """The forged response arrives in the same write as the real one."""
    await _attack(nursery, secure_gateway, kind, FORGED, None, pause)


@pytest.mark.parametrize("kind", list(FIRST))
async def test_start_of_a_forged_head_with_the_response(front, secure_gateway, nursery, kind):
    await _attack(nursery, secure_gateway, kind, PARTIAL, None, 0.0)


@pytest.mark.parametrize("kind", list(FIRST))
@pytest.mark.parametrize("pause", [0.06, 0.3], ids=["inside-100ms", "after-300ms"])
async def test_extra_bytes_after_the_response(front, secure_gateway, nursery, kind, pause):
    """The forged response follows 30 ms later, while the connection sits idle in the pool
    (the idle check used to be skipped for connections idle under 100 ms)."""
    await _attack(nursery, secure_gateway, kind, FORGED, 0.03, pause)


@pytest.fixture(scope="module")
def upstream_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    spec = importlib.util.spec_from_file_location("_tls_helpers", Path(__file__).parent.parent / "test_tls.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    cert, key = mod.self_signed(tmp_path_factory.mktemp("upstream-tls"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.mark.parametrize("kind", list(FIRST))
@pytest.mark.parametrize(("delay", "pause"), [(None, 0.0), (0.0, 0.0), (0.03, 0.06)],
                         ids=["one-record", "two-records", "later"])
async def test_extra_bytes_from_a_tls_upstream(front, secure_gateway, nursery, upstream_tls, kind, delay, pause):
    """Over TLS the extra bytes may wait in the TLS layer (a second record read with the first)."""
    await _attack(nursery, secure_gateway, kind, FORGED, delay, pause, upstream_tls)
