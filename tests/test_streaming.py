"""Streaming with backpressure and bounded memory: 1 GiB up and 1 GiB down through a
gateway running in its own process, whose resident memory must grow by < 64 MiB.

The gateway runs as ``python -m triogate run`` so its RSS is its own; the client and
the upstream live in this test process and generate/consume the bytes as streams.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from triogate import Body, Response
from triogate.testing import free_port

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends

GIB = 1 << 30
CHUNK = b"\x5a" * (1 << 20)
RSS_BUDGET = 64 << 20


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture
async def gateway_process(tmp_path, upstream_factory):
    counted: dict[str, int] = {}

    async def handler(req):
        if req.path == "/download":
            async def gen() -> AsyncIterator[bytes]:
                for _ in range(GIB // len(CHUNK)):
                    yield CHUNK
            return Response(200, [("content-type", "application/octet-stream"), ("content-length", str(GIB))],
                            Body(gen(), GIB))
        n = 0
        async for chunk in req.body:
            n += len(chunk)
        counted["upload"] = n
        return {"received": n}

    up = await upstream_factory(handler)
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f"""
[gateway]
listen = ["127.0.0.1:{port}"]
access_log = "off"
log_level = "warning"
limits = {{ max_body_bytes = 0 }}

[upstreams.u]
targets = [{{ url = "{up.url}" }}]

[routes.r]
paths = ["/"]
upstream = "u"
""")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "triogate", "run", "-c", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        with trio.fail_after(20):
            while True:
                try:
                    s = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                    await trio.sleep(0.05)
                    continue
                await s.aclose()
                break
        yield proc, port, counted
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _warm_up(port: int) -> None:
    """A few small requests so imports, pools and buffers exist before the baseline."""
    for _ in range(3):
        s = await trio.open_tcp_stream("127.0.0.1", port)
        async with s:
            await s.send_all(b"POST /warm HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
            while await s.receive_some(65536):
                pass


async def _read_head(stream: trio.SocketStream) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.slow
async def test_one_gib_upload_streams_in_bounded_memory(gateway_process):
    proc, port, counted = gateway_process
    await _warm_up(port)
    base = _status_kib(proc.pid, "VmRSS")
    start = trio.current_time()
    with trio.fail_after(120):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"PUT /upload HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % GIB)
            for _ in range(GIB // len(CHUNK)):
                await stream.send_all(CHUNK)
            head, rest = await _read_head(stream)
    elapsed = trio.current_time() - start
    peak = _status_kib(proc.pid, "VmHWM")
    growth = (peak - base) * 1024
    print(f"\nupload 1 GiB: {elapsed:.1f}s ({GIB / elapsed / 1e6:.0f} MB/s), gateway RSS {base} KiB -> peak {peak} KiB")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert counted["upload"] == GIB
    assert growth < RSS_BUDGET, f"gateway RSS grew by {growth / 2**20:.1f} MiB"


@pytest.mark.slow
async def test_one_gib_download_streams_in_bounded_memory(gateway_process):
    proc, port, _ = gateway_process
    await _warm_up(port)
    base = _status_kib(proc.pid, "VmRSS")
    start = trio.current_time()
    received = 0
    with trio.fail_after(120):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET /download HTTP/1.1\r\nhost: x\r\n\r\n")
            head, rest = await _read_head(stream)
            received = len(rest)
            while received < GIB:
                chunk = await stream.receive_some(1 << 20)
                assert chunk, f"connection closed after {received} bytes"
                received += len(chunk)
    elapsed = trio.current_time() - start
    peak = _status_kib(proc.pid, "VmHWM")
    growth = (peak - base) * 1024
    print(f"\ndownload 1 GiB: {elapsed:.1f}s ({GIB / elapsed / 1e6:.0f} MB/s), gateway RSS {base} KiB -> peak {peak} KiB")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"content-length: %d" % GIB in head.lower()
    assert received == GIB
    assert growth < RSS_BUDGET, f"gateway RSS grew by {growth / 2**20:.1f} MiB"


async def test_slow_consumer_applies_backpressure_to_the_upstream(upstream_factory, gateway_factory):
    """The upstream can only run ahead of a client that stops reading by the socket buffers."""
    produced = 0

    async def handler(req):
        async def gen() -> AsyncIterator[bytes]:
            nonlocal produced
            for _ in range(256):  # 256 MiB if nobody pushed back
                produced += len(CHUNK)
                yield CHUNK
        return Response(200, [("content-length", str(256 * len(CHUNK)))], gen())

    up = await upstream_factory(handler)
    gw = await gateway_factory({"upstreams": {"u": {"targets": [{"url": up.url}]}},
                                "routes": {"r": {"paths": ["/"], "upstream": "u"}}})
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await _read_head(stream)
        await trio.sleep(0.5)  # not reading
        stalled_at = produced
        await trio.sleep(0.3)
        assert produced == stalled_at  # the producer is blocked
        assert produced < 64 * len(CHUNK), produced  # bounded by socket buffers, not the body size
