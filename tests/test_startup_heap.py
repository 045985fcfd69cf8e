"""The gateway freezes its startup heap once it listens, so full collections under load skip it.

Measured with gc.callbacks (docs/performance.md): full collections walked ~90k startup objects,
a 20-25 ms stop of every connection; frozen, they take under 1 ms. A local hook reports
``gc.get_freeze_count()`` from inside real `triogate run` processes, one worker and two.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port

ENV = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}
PROBE = '''
import gc
import triogate


@triogate.hookimpl
async def transform(ctx):
    if ctx.request.path == "/gc":
        return triogate.Response(200, [("content-type", "text/plain")], str(gc.get_freeze_count()).encode())
'''


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_startup_heap_is_frozen(tmp_path: Path, upstream: UpstreamServer, workers: int) -> None:
    port = free_port()
    (tmp_path / "probe.py").write_text(PROBE)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f"""
[gateway]
listen = ["127.0.0.1:{port}"]
hooks = ["./probe.py"]
access_log = "off"
[upstreams.u]
targets = [{{ url = "{upstream.url}" }}]
[routes.r]
paths = ["/"]
upstream = "u"
""")
    async with GatewayProcess(cfg, env=ENV, args=["--workers", str(workers)]) as gw:
        client = GatewayClient(gw.url)
        try:
            with trio.fail_after(10):
                counts = {int((await client.get("/gc", headers={"connection": "close"})).content) for _ in range(4)}
        finally:
            await client.aclose()
    # modules, config, plugins: tens of thousands of objects, out of the collector's sight
    assert min(counts) > 10_000, counts
