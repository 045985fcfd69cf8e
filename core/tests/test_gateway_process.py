"""triogate.testing.GatewayProcess: `triogate run` as a child process with bounded waits."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import trio
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port

ENV = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}


def config_text(port: int, upstream: UpstreamServer, admin_port: int | None = None) -> str:
    admin = f'[admin]\nlisten = "127.0.0.1:{admin_port}"\ntoken = "gateway-process-token"\n' if admin_port else ""
    return f"""
[gateway]
listen = ["127.0.0.1:{port}"]
{admin}
[upstreams.u]
targets = [{{ url = "{upstream.url}" }}]
[routes.a]
paths = ["/a"]
upstream = "u"
"""


async def test_serves_from_a_file_and_stops_cleanly(tmp_path: Path, upstream: UpstreamServer) -> None:
    port, admin_port = free_port(), free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(port, upstream, admin_port))
    async with GatewayProcess(cfg, env=ENV) as gw:
        assert (gw.port, gw.url) == (port, f"http://127.0.0.1:{port}")
        assert (gw.admin_port, gw.admin_url) == (admin_port, f"http://127.0.0.1:{admin_port}")
        assert gw.pid_file == tmp_path / ".gateway.toml.pid"
        assert int(gw.pid_file.read_text()) == gw.pid and gw.returncode is None
        client = GatewayClient(gw.url)
        try:
            with trio.fail_after(5):
                assert (await client.get("/a/x")).status == 200
        finally:
            await client.aclose()
        assert await gw.stop() == 0
    assert gw.returncode == 0 and not gw.pid_file.exists()
    assert f"listening on http://127.0.0.1:{port}" in gw.output()  # kept after exit
    assert not gw.directory.exists()


async def test_text_dict_args_and_signals(tmp_path: Path, upstream: UpstreamServer) -> None:
    port = free_port()
    cfg = {"gateway": {"listen": [f"127.0.0.1:{port}"]}, "upstreams": {"u": {"targets": [{"url": upstream.url}]}}}
    pid_file = tmp_path / "gw.pid"
    async with GatewayProcess(cfg, env=ENV, args=["--pid-file", pid_file]) as gw:
        assert gw.pid_file == pid_file and int(pid_file.read_text()) == gw.pid
        gw.send_signal(signal.SIGTERM)
        assert await gw.wait(10) == 0
    async with GatewayProcess(config_text(port, upstream), env=ENV, python=sys.executable) as gw:
        assert gw.config_path.parent == gw.directory
        await gw.kill()
        assert gw.returncode == -signal.SIGKILL


async def test_failure_to_start_shows_the_output(upstream: UpstreamServer) -> None:
    bad = config_text(free_port(), upstream).replace('upstream = "u"', 'upstream = "nope"')
    with pytest.raises(RuntimeError, match=r"exited with status 2 before serving; its output:\n(.|\n)*"
                                           r"routes\.a\.upstream: unknown upstream 'nope'") as err:
        async with GatewayProcess(bad, env=ENV):
            pass
    assert "triogate run -c" in str(err.value)


async def test_start_is_bounded_and_kills_a_stuck_child(upstream: UpstreamServer) -> None:
    stuck = [sys.executable, "-c", "import sys, time; print('stuck', flush=True); time.sleep(60)"]
    gw = GatewayProcess(config_text(free_port(), upstream), command=stuck, start_timeout=1.0)
    with trio.fail_after(10), pytest.raises(RuntimeError, match=r"did not serve within 1\.0 s(.|\n)*stuck"):
        await gw.start()
    assert gw.returncode == -signal.SIGKILL
    await gw.aclose()
    assert gw.output() == "stuck\n"
