"""Starvation: a connection that always has its next request ready must not hold the event loop.

The native server reads and writes without trio's forced schedule points (sockio.py), so a
client that pipelines requests answered without an upstream (cache hits, local answers) never
blocks in recv and, unless the server yields per request, serves its whole buffer before any
other connection gets a turn: the p99 at c=50 on cache hits was 30x the p50 (issue 12).

The clients are blocking sockets in threads so they can count while the gateway's task runs.
"""

from __future__ import annotations

import socket
import threading
import time
import types
from typing import Any

import trio
import triogate

from .conftest import route_to

PIPELINED = 3000
READ_TIMEOUT = 20.0


def _answering_hooks(seen: dict[str, int]) -> types.ModuleType:
    """Answers every request; counts A's requests as the gateway handles them, and notes the count
    when B's is handled (server side: the clients' threads may lag behind on a loaded machine)."""
    mod = types.ModuleType("fairness_hooks")

    @triogate.hookimpl
    async def transform(ctx: Any) -> triogate.Response:
        if ctx.request.path == "/b":
            seen["a_when_b_served"] = seen["a"]
        else:
            seen["a"] += 1
        return triogate.Response(200, [("content-type", "text/plain")], b"ok")

    mod.transform = transform  # type: ignore[attr-defined]
    return mod


class _Counter:
    """Reads a connection's responses and counts their status lines as they arrive."""

    def __init__(self) -> None:
        self.count = 0
        self.done = threading.Event()

    def read(self, sock: socket.socket, expected: int) -> None:
        tail = b""
        sock.settimeout(READ_TIMEOUT)
        try:
            while self.count < expected:
                data = sock.recv(65536)
                if not data:
                    break
                chunk = tail + data
                self.count += chunk.count(b"HTTP/1.1 200 ")
                tail = chunk[-12:]
                # a status line split across reads is counted once: drop what was counted from the tail
                if b"HTTP/1.1 200 " in tail:
                    tail = b""
        finally:
            self.done.set()


def _clients(port: int, seen: dict[str, int]) -> tuple[int, int, float]:
    """A pipelines PIPELINED requests; once the gateway has handled 50, B sends one. How many of A's
    requests did the gateway handle between B's request being sent and being served?"""
    a = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
    b = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
    try:
        counter = _Counter()
        reader = threading.Thread(target=counter.read, args=(a, PIPELINED), daemon=True)
        reader.start()
        a.sendall(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n" * PIPELINED)
        deadline = time.monotonic() + READ_TIMEOUT
        while seen["a"] < 50 and time.monotonic() < deadline:
            time.sleep(0.0005)
        before = seen["a"]
        started = time.monotonic()
        b.sendall(b"GET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answer = b.recv(65536)
        waited = time.monotonic() - started
        after = seen["a_when_b_served"]
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
        counter.done.wait(READ_TIMEOUT)
        assert counter.count == PIPELINED, f"only {counter.count} of {PIPELINED} pipelined requests answered"
        return before, after, waited
    finally:
        a.close()
        b.close()


async def test_a_pipelining_client_does_not_starve_another(secure_gateway: Any, upstream: Any) -> None:
    seen = {"a": 0, "a_when_b_served": -1}
    gw = await secure_gateway(route_to(upstream), hooks=[_answering_hooks(seen)])
    before, after, waited = await trio.to_thread.run_sync(_clients, gw.port, seen)
    # without a yield per request B waits for A's whole buffered batch (~1800 answers per 64 KiB read)
    assert after - before < 200, f"B waited {waited * 1000:.0f} ms, while {after - before} of A's requests were served"
