"""Workspace-wide fixtures (tests/, plugin-template/tests/ ...).

``make_dist``: the folder ``make dist`` fills, built once per test session (~10 s on 2 cores)
and shared by tests/test_dist.py (one wheel per distribution, the README's install command)
and plugin-template/tests/test_render.py (the rendered project installs the core from it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def make_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # PY: this interpreter (the workspace venv); -o: never reinstall the venv from inside a test run
    cmd = ["make", "--no-print-directory", "-o", ".venv/.installed", "dist", f"DIST_DIR={out}", f"PY={sys.executable}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out
