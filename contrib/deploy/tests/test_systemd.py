"""The systemd unit: parsed like systemd does (sections, keys), and verified by systemd-analyze."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from triogate import load_config

HERE = Path(__file__).resolve().parent.parent
UNIT = HERE / "systemd" / "triogate.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: ``[Section]`` headers, ``Key=value`` lines (repeatable), # and ; comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"line {n}: key outside a section"
        assert "=" in line, f"line {n}: not Key=value: {raw!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_structure():
    unit = parse_unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    svc = unit["Service"]
    (start,) = svc["ExecStart"]
    pid_file = start.split()[start.split().index("--pid-file") + 1]
    # `triogate reload` reports every worker's outcome; kill -HUP would report success for a refused reload
    assert svc["ExecReload"] == [f"/opt/triogate/bin/triogate reload -c /etc/triogate/gateway.toml --pid-file {pid_file}"]
    assert svc["KillSignal"] == ["SIGTERM"]
    (start,) = svc["ExecStart"]
    assert start.split()[:4] == ["/opt/triogate/bin/triogate", "run", "-c", "/etc/triogate/gateway.toml"]
    assert svc["ExecStartPre"] == ["/opt/triogate/bin/triogate check -c /etc/triogate/gateway.toml"]
    assert svc["Environment"].count("PROMETHEUS_MULTIPROC_DIR=/run/triogate/metrics") == 1
    assert "triogate/metrics" in svc["RuntimeDirectory"][0].split()
    assert svc["User"] == ["triogate"] and svc["NoNewPrivileges"] == ["yes"]
    assert int(svc["TimeoutStopSec"][0]) > 30  # longer than the default drain
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is needed (apt-get install systemd)"
    # verify needs the executables the unit names to exist: point them at stand-ins
    text = UNIT.read_text().replace("/opt/triogate/bin/triogate", str(tmp_path / "triogate"))
    stub = tmp_path / "triogate"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = tmp_path / "triogate.service"
    unit.write_text(text)
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    r = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, env=env,
                       timeout=60, check=False)
    # only lines about our unit count: the host's own units may have unrelated warnings
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "triogate.service" in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_example_config_is_valid():
    cfg = load_config(HERE / "systemd" / "gateway.toml", env={"TRIOGATE_ADMIN_TOKEN": "x" * 32})
    assert cfg.admin.listen == "127.0.0.1:8001" and cfg.gateway.workers == 2
