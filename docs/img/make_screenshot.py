"""Regenerate docs/img/admin-ui.png, the README's screenshot of the admin UI.

It runs the browser test (tests/test_admin_ui.py: a real gateway, upstreams, traffic, a target
stopped) and keeps the page as it looks at the end:

    .venv/bin/python docs/img/make_screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().with_name("admin-ui.png")

if __name__ == "__main__":
    env = {**os.environ, "TRIOGATE_SCREENSHOT": str(OUT)}
    test = "tests/test_admin_ui.py::test_admin_ui_in_a_real_browser"
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", test], cwd=ROOT, env=env)
    if code == 0:
        print(f"wrote {OUT.relative_to(ROOT)}")
    sys.exit(code)
