"""`workers = N`: a supervisor forks N workers on inherited sockets, restarts dead ones,
reloads them all on SIGHUP and drains them on SIGTERM (exit 0). Real processes."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
from pathlib import Path

import trio
import triogate
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port

HOOKS = textwrap.dedent("""
    import os
    import triogate

    @triogate.hookimpl
    async def post_response(ctx, response):
        response.headers.set("x-pid", str(os.getpid()))
""")


def env() -> dict[str, str]:
    return {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}


def write_config(path: Path, port: int, upstream: UpstreamServer, *, workers: int = 2, extra: str = "") -> None:
    path.write_text(textwrap.dedent(f"""
        [gateway]
        listen = ["127.0.0.1:{port}"]
        workers = {workers}
        hooks = ["./hooks.py"]
        access_log = "off"
        [gateway.timeouts]
        drain = 5.0
        shutdown = 2.0
        [upstreams.u]
        targets = [{{ url = "{upstream.url}" }}]
        [routes.a]
        paths = ["/a"]
        upstream = "u"
    """) + textwrap.dedent(extra))


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


async def fresh_get(port: int, path: str) -> triogate.Fetched:
    """One request on a new connection (so the kernel picks a worker each time)."""
    client = GatewayClient(f"http://127.0.0.1:{port}")
    try:
        with trio.fail_after(5):
            return await client.get(path)
    finally:
        await client.aclose()


async def pids_serving(port: int, path: str, want: int, timeout: float = 10) -> dict[int, int]:
    """Send concurrent batches on fresh connections until ``want`` different pids answered 200."""
    seen: dict[int, int] = {}
    with trio.fail_after(timeout):
        while len(seen) < want:
            results: list[triogate.Fetched] = []

            async def one(into: list[triogate.Fetched]) -> None:
                into.append(await fresh_get(port, path))

            async with trio.open_nursery() as n:
                for _ in range(8):
                    n.start_soon(one, results)
            for r in results:
                if r.status == 200:
                    pid = int(r.headers["x-pid"])
                    seen[pid] = seen.get(pid, 0) + 1
    return seen


async def test_workers_share_the_port_restart_reload_and_drain(tmp_path: Path, upstream_factory) -> None:
    release = trio.Event()

    async def handler(req: triogate.Request) -> dict:
        if req.path == "/a/slow":
            await release.wait()
        return {"path": req.path}

    upstream = await upstream_factory(handler)
    port = free_port()
    (tmp_path / "hooks.py").write_text(HOOKS)
    cfg = tmp_path / "gateway.toml"
    write_config(cfg, port, upstream)
    async with GatewayProcess(cfg, env=env()) as proc:  # the pid file is written once every worker listens
        assert int((tmp_path / ".gateway.toml.pid").read_text()) == proc.pid
        # two workers, both serving, both children of the supervisor
        workers = children(proc.pid)
        assert len(workers) == 2
        seen = await pids_serving(port, "/a", 2)
        assert set(seen) == workers

        # a killed worker is replaced
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        with trio.fail_after(10):
            while True:
                now = children(proc.pid)
                if victim not in now and len(now) == 2:
                    break
                await trio.sleep(0.05)
        (replacement,) = now - workers
        seen = await pids_serving(port, "/a", 2)
        assert set(seen) == now
        assert replacement in seen

        # SIGHUP: the supervisor validates the file, then every worker reloads it
        write_config(cfg, port, upstream, extra='[routes.b]\npaths = ["/b"]\nupstream = "u"\n')
        proc.send_signal(signal.SIGHUP)
        seen = await pids_serving(port, "/b", 2)
        assert set(seen) == now
        results = [await fresh_get(port, "/b") for _ in range(20)]
        assert [r.status for r in results] == [200] * 20
        # an invalid file on SIGHUP: rejected by the supervisor, every worker keeps serving
        cfg.write_text(cfg.read_text() + '\n[routes.c]\npaths = ["/c"]\nupstream = "nope"\n')
        proc.send_signal(signal.SIGHUP)
        with trio.fail_after(10):
            while "reload rejected" not in proc.output():
                await trio.sleep(0.05)
        assert children(proc.pid) == now
        results = [await fresh_get(port, "/b") for _ in range(10)]
        assert [r.status for r in results] == [200] * 10

        # SIGTERM: in-flight requests finish, then the supervisor exits 0
        slow: list[triogate.Fetched] = []

        async def slow_request() -> None:
            slow.append(await fresh_get(port, "/a/slow"))

        async with trio.open_nursery() as n:
            n.start_soon(slow_request)
            with trio.fail_after(5):
                while not any(r.path == "/a/slow" for r in upstream.requests):
                    await trio.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            await trio.sleep(0.3)
            assert proc.returncode is None  # still draining
            release.set()
        assert slow[0].status == 200
        await proc.wait(15)
        assert proc.returncode == 0, proc.output()
        for pid in now:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        assert not (tmp_path / ".gateway.toml.pid").exists()
        assert "Traceback" not in proc.output()


FAILING_STARTUP = textwrap.dedent("""
    import triogate

    @triogate.hookimpl
    async def startup(gateway):
        raise RuntimeError("database unreachable")
""")


async def run_cli(tmp_path: Path) -> trio.CompletedProcess:
    with trio.fail_after(30):
        return await trio.run_process([sys.executable, "-m", "triogate", "run", "-c", "gateway.toml"], cwd=tmp_path,
                                      env=env(), capture_stdout=True, capture_stderr=True, check=False)


async def test_startup_failure_stops_the_gateway_with_the_plugin_named(tmp_path: Path, upstream: UpstreamServer) -> None:
    (tmp_path / "hooks.py").write_text(FAILING_STARTUP)
    for workers in (1, 2):
        write_config(tmp_path / "gateway.toml", free_port(), upstream, workers=workers)
        done = await run_cli(tmp_path)
        err = done.stderr.decode()
        assert done.returncode == 1, err
        assert "triogate: plugin hooks:./hooks.py failed at startup: RuntimeError: database unreachable" in err
        if workers == 2:
            assert "triogate: a worker failed to start; see the log above" in err


async def test_port_in_use_is_one_clear_line(tmp_path: Path, upstream: UpstreamServer) -> None:
    (tmp_path / "hooks.py").write_text(HOOKS)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for workers in (1, 2):
            write_config(tmp_path / "gateway.toml", port, upstream, workers=workers)
            done = await run_cli(tmp_path)
            err = done.stderr.decode()
            assert done.returncode == 1, err
            assert f"triogate: cannot listen on 127.0.0.1:{port}: Address already in use" in err
            assert "Traceback" not in err
