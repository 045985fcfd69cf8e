"""Shared harness for the attack tests: a gateway on every front door, and an upstream that
records the exact bytes it receives.

``front`` parametrizes a test over both listeners (the native HTTP/1.1 one and the ``h2``
one, which also accepts HTTP/1.1) and both HTTP/1.1 parsers; ``secure_gateway(config)``
starts a gateway listening the way ``front`` says. ``raw_upstream(responder)`` is a TCP
server on 127.0.0.1 that keeps every byte of every connection (``.connections[i].data``)
and answers each request head it parses with whatever bytes ``responder`` returns, so a
test can see exactly what the gateway forwarded (a smuggled second request included) and
can misbehave on purpose (extra bytes after a response, a reset, a stall).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio

from triogate.http1 import fast_available
from triogate.testing import RunningGateway

PARSERS = ["fast", "h11"] if fast_available else ["h11"]
LISTENERS = ["native", "h2"]
FRONTS = [(lst, p) for lst in LISTENERS for p in PARSERS]


@attrs.define
class Front:
    listener: str  # "native" (protocol = "http1") or "h2" (protocol = "h2", HTTP/1.1 accepted too)
    parser: str

    def listen(self) -> list[dict[str, Any]]:
        return [{"address": "127.0.0.1:0", "protocol": "h2" if self.listener == "h2" else "http1"}]


@pytest.fixture(params=FRONTS, ids=[f"{lst}-{p}" for lst, p in FRONTS])
def front(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Front:
    monkeypatch.setenv("TRIOGATE_HTTP1_PARSER", request.param[1])
    return Front(*request.param)


@pytest.fixture
def secure_gateway(front: Front, gateway_factory: Any) -> Callable[..., Awaitable[RunningGateway]]:
    """Start a gateway from ``config`` on the listener ``front`` names."""

    async def start(config: dict[str, Any], **kwargs: Any) -> RunningGateway:
        config = dict(config)
        config["gateway"] = {**config.get("gateway", {}), "listen": front.listen()}
        return await gateway_factory(config, **kwargs)

    return start


# --------------------------------------------------------------------------- the recording upstream

OK_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


@attrs.define
class RawConnection:
    data: bytearray = attrs.Factory(bytearray)
    heads: list[bytes] = attrs.Factory(list)  # each request head (up to and with CRLFCRLF), in order


Responder = Callable[[bytes, RawConnection], bytes | None]


class RawUpstream:
    """Records raw bytes; answers each request head with ``responder(head, conn)`` (None: answer nothing)."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or (lambda head, conn: OK_RESPONSE)
        self.connections: list[RawConnection] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data(self) -> bytes:
        """Every byte received, over all connections, in connection order."""
        return b"".join(bytes(c.data) for c in self.connections)

    @property
    def heads(self) -> list[bytes]:
        return [h for c in self.connections for h in c.heads]

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, stream: trio.SocketStream) -> None:
        conn = RawConnection()
        self.connections.append(conn)
        pending = bytearray()
        try:
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                conn.data += chunk
                pending += chunk
                while (end := pending.find(b"\r\n\r\n")) >= 0:
                    head = bytes(pending[:end + 4])
                    del pending[:end + 4]
                    conn.heads.append(head)
                    length = _content_length(head)
                    while len(pending) < length:  # a test upstream: bodies it answers are small
                        more = await stream.receive_some(65536)
                        if not more:
                            return
                        conn.data += more
                        pending += more
                    del pending[:length]
                    answer = self.responder(head, conn)
                    if answer:
                        await stream.send_all(answer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            await trio.aclose_forcefully(stream)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0


@pytest.fixture
async def raw_upstream(nursery: trio.Nursery) -> Callable[..., Awaitable[RawUpstream]]:
    async def start(responder: Responder | None = None) -> RawUpstream:
        server = RawUpstream(responder)
        await nursery.start(server.run)
        return server

    return start


def route_to(upstream: Any, **route: Any) -> dict[str, Any]:
    """The smallest config: every path to ``upstream`` (route options merged in)."""
    return {"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
            "routes": {"r": {"paths": ["/"], "upstream": "u", **route}}}
