"""The upstream connection pool: keep-alive reuse, connection cap and queueing, pool
timeout (503), stale keep-alive connections and the one safe retry, failures mapped
to 502/503/504."""

from __future__ import annotations

import socket
from typing import Any

import trio

from triogate.testing import ResetConnection, free_port
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends


def config(*urls: str, **upstream: Any) -> dict:
    return {
        "upstreams": {"u": {"targets": [{"url": u} for u in urls], **upstream}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def test_keep_alive_connections_are_reused(upstream, gateway_factory):
    gw = await gateway_factory(config(upstream.url))
    for i in range(30):
        assert (await gw.client.get(f"/{i}")).status == 200
    for i in range(5):
        assert (await gw.client.post(f"/p{i}", body=b"x" * 1000)).status == 200
    assert upstream.connections == 1
    pool = gw.gateway.pipeline.upstreams["u"].targets[0].pool
    with trio.fail_after(2):  # the last response's cleanup may still be running when the client has it
        while pool.active_requests:
            await trio.sleep(0.01)
    assert pool.open_connections == 1


async def test_concurrent_requests_open_at_most_max_connections_and_queue(upstream_factory, gateway_factory, nursery):
    active = 0
    peak = 0

    async def handler(req):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await trio.sleep(0.1)
        active -= 1
        return {"ok": True}

    up = await upstream_factory(handler)
    gw = await gateway_factory(config(up.url, max_connections=2, connect_timeout=5))
    results: list[int] = []

    async def one(i: int) -> None:
        from triogate.upstream import HTTPClient

        client = HTTPClient()  # one connection per client request, so the gateway sees 8 at once
        try:
            results.append((await client.fetch("GET", f"{gw.url}/{i}")).status)
        finally:
            await client.aclose()

    async with trio.open_nursery() as n:
        for i in range(8):
            n.start_soon(one, i)
    assert results == [200] * 8
    assert peak == 2
    assert up.connections == 2


async def test_pool_timeout_is_503(upstream_factory, gateway_factory):
    async def slow(req):
        await trio.sleep(1.0)
        return {"ok": True}

    up = await upstream_factory(slow)
    gw = await gateway_factory(config(up.url, max_connections=1, connect_timeout=0.2, retries=0))
    statuses: list[int] = []

    async def one() -> None:
        from triogate.upstream import HTTPClient

        client = HTTPClient()
        try:
            statuses.append((await client.fetch("GET", f"{gw.url}/x")).status)
        finally:
            await client.aclose()

    async with trio.open_nursery() as n:
        n.start_soon(one)
        await trio.sleep(0.05)
        n.start_soon(one)
    assert sorted(statuses) == [200, 503]
    assert len(up.requests) == 1


class ClosingUpstream:
    """Answers with keep-alive, then handles the connection's next request per ``mode``:
    'close-idle' closes the idle connection shortly after answering;
    'drop-next' reads the next request and closes without answering (a keep-alive race)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self.connections = 0
        self.requests: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._conn, listeners)

    async def _read_request(self, stream: trio.SocketStream) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if b"content-length: " in head.lower():
            n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < n:
                body += await stream.receive_some(65536)
        return head

    async def _conn(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        async with stream:
            head = await self._read_request(stream)
            if head is None:
                return
            self.requests.append(head)
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            if self.mode == "close-idle":
                await trio.sleep(0.05)
                return
            head = await self._read_request(stream)  # drop-next: read it, then close without a word
            if head is not None:
                self.requests.append(head)


async def test_idle_connection_closed_by_the_upstream_is_not_used(nursery, gateway_factory):
    up = ClosingUpstream("close-idle")
    await nursery.start(up.run)
    gw = await gateway_factory(config(up.url, retries=0))
    for _ in range(3):
        assert (await gw.client.get("/x")).status == 200
        await trio.sleep(0.15)
    assert len(up.requests) == 3  # each request went out exactly once, on a fresh connection
    assert up.connections == 3


async def test_stale_reused_connection_is_retried_once_for_idempotent_requests(nursery, gateway_factory):
    up = ClosingUpstream("drop-next")
    await nursery.start(up.run)
    gw = await gateway_factory(config(up.url, retries=0))
    assert (await gw.client.get("/a")).status == 200
    r = await gw.client.get("/b")  # goes out on the reused connection, which dies: retried on a new one
    assert r.status == 200 and r.content == b"ok"
    assert up.connections == 2
    assert [h.split(b" ")[1] for h in up.requests] == [b"/a", b"/b", b"/b"]


async def test_stale_reused_connection_is_not_retried_for_post(nursery, gateway_factory):
    up = ClosingUpstream("drop-next")
    await nursery.start(up.run)
    gw = await gateway_factory(config(up.url, retries=0))
    assert (await gw.client.get("/a")).status == 200
    r = await gw.client.post("/b", body=b"pay me once")
    assert r.status == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert [h.split(b" ")[1] for h in up.requests] == [b"/a", b"/b"]


async def test_connection_refused_is_502(gateway_factory):
    gw = await gateway_factory(config(f"http://127.0.0.1:{free_port()}"))
    r = await gw.client.get("/x")
    assert r.status == 502
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_connection_reset_is_502(upstream_factory, gateway_factory):
    async def reset(req):
        raise ResetConnection()

    up = await upstream_factory(reset)
    gw = await gateway_factory(config(up.url, retries=0))
    r = await gw.client.get("/x")
    assert r.status == 502
    r = await gw.client.post("/x", body=b"data")
    assert r.status == 502


async def test_invalid_upstream_response_is_502(nursery, gateway_factory):
    async def garbage(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(65536)
            await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, garbage, listeners)
    gw = await gateway_factory(config(f"http://127.0.0.1:{port}", retries=0))
    assert (await gw.client.get("/x")).status == 502


async def test_connect_timeout_is_504(gateway_factory):
    # a listening socket whose accept queue is full: further SYNs are dropped, connect hangs
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        gw = await gateway_factory(config(f"http://127.0.0.1:{port}", connect_timeout=0.3, retries=0))
        start = trio.current_time()
        r = await gw.client.get("/x")
        assert r.status == 504, r.content
        assert trio.current_time() - start < 2
    finally:
        for s in fillers:
            s.close()
        sock.close()


async def test_read_timeout_is_504(upstream_factory, gateway_factory):
    async def slow(req):
        await trio.sleep(2)
        return {}

    up = await upstream_factory(slow)
    gw = await gateway_factory(config(up.url, read_timeout=0.3, retries=0))
    start = trio.current_time()
    r = await gw.client.get("/x")
    assert r.status == 504
    assert trio.current_time() - start < 1.5


async def test_write_timeout_is_504(nursery, gateway_factory):
    """An upstream that never reads the request body: the gateway's writes stall."""
    accepted: list[trio.SocketStream] = []

    async def never_read(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    for lst in listeners:
        lst.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, never_read, listeners)
    gw = await gateway_factory(config(f"http://127.0.0.1:{port}", write_timeout=0.3, retries=0))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    size = 64 * 1024 * 1024
    answer = b""
    async with stream:
        await stream.send_all(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % size)

        async def upload() -> None:
            try:
                chunk = b"x" * 65536
                for _ in range(size // len(chunk)):
                    await stream.send_all(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        with trio.move_on_after(5):
            async with trio.open_nursery() as n:
                n.start_soon(upload)
                while b"\r\n\r\n" not in answer:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    answer += data
                n.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 504"), answer[:200]


async def test_no_healthy_target_is_503(upstream_factory, gateway_factory):
    async def failing(req):
        from triogate import Response

        return Response(503, [], b"")

    up = await upstream_factory(failing)
    gw = await gateway_factory(config(up.url, retries=0, circuit_breaker={"failures": 1, "open_seconds": 60}))
    r = await gw.client.get("/x")
    assert r.status == 503  # the upstream's own 503, passed through; it opens the circuit
    r = await gw.client.get("/x")
    assert r.status == 503
    assert "no healthy target" in r.json()["detail"]
    assert len(up.requests) == 1


async def test_pool_timeout_is_separate_from_connect_timeout(upstream_factory, gateway_factory):
    release = trio.Event()

    async def slow(req):
        await release.wait()
        return {"ok": True}

    up = await upstream_factory(slow)
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": up.url}], "max_connections": 1, "connect_timeout": 10.0,
                            "pool_timeout": 0.2, "retries": 0}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    })
    async with trio.open_nursery() as n:
        n.start_soon(gw.client.get, "/busy")
        await trio.sleep(0.1)
        start = trio.current_time()
        other = type(gw.client)(gw.url)
        r = await other.get("/waits")
        assert r.status == 503
        assert trio.current_time() - start < 2  # pool_timeout, not the 10 s connect_timeout
        await other.aclose()
        release.set()
