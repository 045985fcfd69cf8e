"""`make run` (python -m triogate_demo run): stopping it with SIGTERM is a clean exit, not `Error 241`.

The demo services listen on their fixed ports (contrib/demo), as `make run` does; the gateway on a free one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from triogate.testing import free_port

ROOT = Path(__file__).resolve().parents[1]


def start_runner(tmp_path: Path, *, through_make: bool = False) -> tuple[subprocess.Popen[bytes], Path]:
    """The demo as `make run` starts it: the repository's gateway.toml (plugins, admin API), on free ports."""
    cfg = tmp_path / "gateway.toml"
    text = (ROOT / "gateway.toml").read_text()
    for fixed in ("127.0.0.1:8000", "127.0.0.1:8001"):
        assert fixed in text
        text = text.replace(fixed, f"127.0.0.1:{free_port()}")
    cfg.write_text(text)
    log = tmp_path / "runner.log"
    env = {k: v for k, v in os.environ.items() if k != "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("wb") as out:  # its own session: a signal to "the group" reaches only runner + gateway
        command = [sys.executable, "-m", "triogate_demo", "run", "-c", str(cfg)]
        if through_make:  # the repository's `make run`, with this config
            (tmp_path / "Makefile").write_text("run:\n\t" + " ".join(command) + "\n")
            command = ["make", "--no-print-directory", "-C", str(tmp_path), "run"]
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, log


def gateway_pid(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://\S+ \(worker 0, pid (\d+)\)", log.read_text())
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the demo did not start:\n{log.read_text()}")


def wait(proc: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the demo did not stop:\n{log.read_text()}") from None


def test_make_run_stopped_with_sigterm_ends_without_an_error(tmp_path: Path) -> None:
    """SIGTERM to the process group of `make run` (a terminal, `docker stop`, systemd): make, the
    runner and the gateway all get it, and make passes one on too. Every copy after the first
    used to kill the gateway after its drain: the runner exited -15 and make said `Error 241`."""
    for round_ in range(3):  # the duplicates race the drain: a few rounds catch a regression reliably
        run_dir = tmp_path / str(round_)
        run_dir.mkdir()
        proc, log = start_runner(run_dir, through_make=True)
        gateway_pid(proc, log)
        os.killpg(proc.pid, signal.SIGTERM)
        wait(proc, log)  # make itself dies of the SIGTERM it got; what matters is what it reports
        out = log.read_text()
        assert "shutting down (draining in-flight requests)" in out
        assert "***" not in out and "Traceback" not in out, out


def test_sigterm_to_the_runner_alone_stops_the_gateway_cleanly(tmp_path: Path) -> None:
    proc, log = start_runner(tmp_path)
    gateway_pid(proc, log)
    proc.send_signal(signal.SIGTERM)
    assert wait(proc, log) == 0, log.read_text()
    assert "shutting down (draining in-flight requests)" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_a_gateway_killed_by_a_signal_is_reported_as_a_shell_would(tmp_path: Path) -> None:
    proc, log = start_runner(tmp_path)
    os.kill(gateway_pid(proc, log), signal.SIGKILL)
    assert wait(proc, log) == 128 + signal.SIGKILL  # not sys.exit(-9), which make shows as "Error 247"


def test_the_demo_serves_the_traffic_management_routes(tmp_path: Path) -> None:
    """The README's canary, mirror and fallback examples against `make run`'s demo: the real runner,
    the services on their fixed ports, the plugins found through their entry points."""
    proc, log = start_runner(tmp_path)
    try:
        gateway_pid(proc, log)
        base = "http://" + re.search(r"listening on http://(\S+) ", log.read_text()).group(1)

        def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read())

        served = [get(f"{base}/api/canary/users/1")[1]["x-served-by"] for _ in range(10)]
        assert served.count("users-v2") == 1 and set(served) == {"users-1", "users-2", "users-v2"}, served
        status, headers, body = get(f"{base}/api/canary/users/1", {"x-canary": "1"})
        assert headers["x-served-by"] == "users-v2" and body["handle"] == "ada"
        status, headers, body = get(f"{base}/api/recommendations/1")
        assert (status, headers["x-fallback"], body) == (200, "static", {"items": [], "fallback": True})
        status, headers, _ = get(f"{base}/api/mirrored/users/2?from=runner")
        deadline = time.monotonic() + 10
        while not (received := get("http://127.0.0.1:9104/_received")[2]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received[0] == {"method": "GET", "path": "/users/2", "query": "from=runner",
                               "x-mirrored-by": "triogate", "x-request-id": headers["x-request-id"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        wait(proc, log)
