"""`triogate reload` tells the truth: every worker's outcome, exit 1 with the errors when refused.

Real `triogate run` processes (one worker and a supervisor with two), reloaded by a real
`triogate reload` through the state file (SIGHUP) or through the admin API.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import trio
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port

ENV = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}
TOKEN = "reload-cli-test-token"
GOOD_HOOK = "import triogate\n\n@triogate.hookimpl\nasync def startup(gateway):\n    pass\n"
BAD_HOOK = ("import triogate\n\n@triogate.hookimpl\nasync def startup(gateway):\n"
            "    raise RuntimeError('hook startup failed on purpose')\n")


def config_text(port: int, upstream: UpstreamServer, path: str, *, admin_port: int | None = None,
                hooks: bool = False) -> str:
    admin = f'[admin]\nlisten = "127.0.0.1:{admin_port}"\ntoken = "{TOKEN}"\n' if admin_port else ""
    return f"""
[gateway]
listen = ["127.0.0.1:{port}"]
{'hooks = ["./hooks.py"]' if hooks else ""}
{admin}
[upstreams.u]
targets = [{{ url = "{upstream.url}" }}]
[routes.r]
paths = ["{path}"]
upstream = "u"
"""


async def reload_cli(cfg: Path, *args: str) -> tuple[int, str, str]:
    with trio.fail_after(60):
        done = await trio.run_process([sys.executable, "-m", "triogate", "reload", "-c", str(cfg), *args],
                                      env=ENV, capture_stdout=True, capture_stderr=True, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def status_of(url: str, path: str) -> int:
    client = GatewayClient(url)
    try:
        with trio.fail_after(5):
            return (await client.get(path)).status
    finally:
        await client.aclose()


@pytest.mark.parametrize(("workers", "admin"), [(1, False), (2, False), (2, True)])
async def test_reload_reports_every_worker(tmp_path: Path, upstream: UpstreamServer, workers: int, admin: bool) -> None:
    port = free_port()
    admin_port = free_port() if admin else None
    cfg = tmp_path / "gateway.toml"
    (tmp_path / "hooks.py").write_text(GOOD_HOOK)
    cfg.write_text(config_text(port, upstream, "/a", admin_port=admin_port, hooks=True))
    async with GatewayProcess(cfg, env=ENV, args=["--workers", str(workers)]) as gw:
        assert await status_of(gw.url, "/a") == 200

        # accepted: every worker says so, and serves the new route
        cfg.write_text(config_text(port, upstream, "/b", admin_port=admin_port, hooks=True))
        code, out, err = await reload_cli(cfg)
        assert (code, err) == (0, ""), out + err + gw.output()
        lines = out.splitlines()
        assert len(lines) == workers, out
        assert sorted(line.split()[2] for line in lines) == [str(i) for i in range(workers)]
        assert all(line.startswith("reloaded: worker ") and line.endswith("config version 2") for line in lines), out
        for _ in range(workers * 3):  # any worker may take the connection
            assert await status_of(gw.url, "/b") == 200
            assert await status_of(gw.url, "/a") == 404

        # refused: the hook's startup raises in every worker; exit 1, one line per worker's error
        (tmp_path / "hooks.py").write_text(BAD_HOOK)
        cfg.write_text(config_text(port, upstream, "/c", admin_port=admin_port, hooks=True))
        code, out, err = await reload_cli(cfg)
        assert (code, out) == (1, ""), out + err
        head, *errors = err.splitlines()
        assert head == f"triogate: reload refused, the running config keeps serving ({workers} error"\
            f"{'s' if workers > 1 else ''}):", err
        assert len(errors) == workers, err
        assert all("hook startup failed on purpose" in e for e in errors), err
        if workers > 1:
            assert sorted(e.split()[1] for e in errors) == [str(i) for i in range(workers)], err
        for _ in range(workers * 3):
            assert await status_of(gw.url, "/b") == 200  # the running config keeps serving
            assert await status_of(gw.url, "/c") == 404

        # fixed again: applied (config version 3: the refused one did not count)
        (tmp_path / "hooks.py").write_text(GOOD_HOOK)
        code, out, err = await reload_cli(cfg)
        assert code == 0 and len(out.splitlines()) == workers, out + err
        assert all(line.endswith("config version 3") for line in out.splitlines()), out
        assert await status_of(gw.url, "/c") == 200
        if not admin:
            outcome = json.loads(Path(str(gw.pid_file) + ".reload.json").read_text())
            assert outcome["ok"] is True and len(outcome["workers"]) == workers
    assert not Path(str(gw.pid_file) + ".reload.json").exists()  # no outcome outlives its gateway


async def test_invalid_file_is_refused_before_sending(tmp_path: Path, upstream: UpstreamServer) -> None:
    """A file that fails validation is refused by `reload` itself (exit 2, nothing sent); a plain
    SIGHUP in between leaves an outcome that the next `reload` does not take for its own."""
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(port, upstream, "/a"))
    async with GatewayProcess(cfg, env=ENV, args=["--workers", "2"]) as gw:
        cfg.write_text(config_text(port, upstream, "/a") + "\n[routes.bad]\npaths = 5\n")
        code, out, err = await reload_cli(cfg)
        assert code == 2 and "routes.bad.paths" in err and "not reloading" in err, err
        gw.send_signal(signal.SIGHUP)  # refused by the supervisor: an outcome under another id
        cfg.write_text(config_text(port, upstream, "/b"))
        code, out, err = await reload_cli(cfg, "--timeout", "20")
        assert code == 0 and len(out.splitlines()) == 2, out + err
        assert await status_of(gw.url, "/b") == 200


async def test_reload_of_another_file_is_refused_not_reported_as_done(tmp_path: Path, upstream: UpstreamServer) -> None:
    """The gateway re-reads its own file: `reload -c other.toml` must not say "reloaded" while the
    other file's config is never applied. It exits 2, names both files and reloads nothing."""
    port, admin_port = free_port(), free_port()
    cfg, other = tmp_path / "gateway.toml", tmp_path / "other.toml"
    cfg.write_text(config_text(port, upstream, "/a", admin_port=admin_port))
    async with GatewayProcess(cfg, env=ENV) as gw:
        other.write_text(config_text(port, upstream, "/b", admin_port=admin_port))
        code, out, err = await reload_cli(other)
        assert (code, out) == (2, ""), out + err
        assert f"the running gateway reloads from {cfg}, not {other}: not reloading" in err, err
        assert await status_of(gw.url, "/a") == 200 and await status_of(gw.url, "/b") == 404
        code, out, err = await reload_cli(cfg)  # its own file: reloaded, and nothing was applied before
        assert (code, out) == (0, f"reloaded: worker 0 (pid {gw.pid}) serves config version 2\n"), out + err


@pytest.mark.parametrize("workers", [1, 2])
async def test_reload_of_another_file_through_the_pid_file_is_refused(tmp_path: Path, upstream: UpstreamServer,
                                                                      workers: int) -> None:
    """Without the admin API, `reload --pid-file X -c other.toml` learns the gateway's file from the
    state files next to the pid file, and refuses the same way."""
    port = free_port()
    cfg, other = tmp_path / "gateway.toml", tmp_path / "other.toml"
    cfg.write_text(config_text(port, upstream, "/a"))
    async with GatewayProcess(cfg, env=ENV, args=["--workers", str(workers)]) as gw:
        other.write_text(config_text(port, upstream, "/b"))
        code, out, err = await reload_cli(other, "--pid-file", str(gw.pid_file))
        assert (code, out) == (2, ""), out + err
        assert f"reloads from {cfg}, not {other}: not reloading" in err, err
        assert await status_of(gw.url, "/a") == 200 and await status_of(gw.url, "/b") == 404
        code, out, err = await reload_cli(cfg, "--pid-file", str(gw.pid_file), "--timeout", "20")
        assert code == 0 and out.startswith("reloaded: "), out + err
    assert not Path(str(gw.pid_file) + ".config").exists()  # removed with the other state files


async def test_no_running_gateway(tmp_path: Path, upstream: UpstreamServer) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(free_port(), upstream, "/a"))
    code, out, err = await reload_cli(cfg)
    assert (code, out) == (1, "")
    assert err == f"triogate: no running gateway found (no pid in {tmp_path / '.gateway.toml.pid'})\n", err
    (tmp_path / ".gateway.toml.pid").write_text("999999999\n")  # stale: no such process
    code, out, err = await reload_cli(cfg)
    assert code == 1 and "process 999999999" in err and "is not running" in err, err
    assert not (tmp_path / ".gateway.toml.pid.reload-request").exists()
    admin_port = free_port()
    cfg.write_text(config_text(free_port(), upstream, "/a", admin_port=admin_port))
    code, out, err = await reload_cli(cfg)
    assert code == 1 and f"no running gateway answers on the admin API at http://127.0.0.1:{admin_port}/reload" in err
