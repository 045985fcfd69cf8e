"""The code in docs/writing-plugins.md and docs/testing.md is run, not just read.

Every ```python block must start with ``# file: <path>``; those blocks (and ```toml blocks
with such a line) are written into a temporary project, then the project's tests run in a
subprocess (``src/`` on the path, like an installed package) and must all pass. A Python
block without a file line fails this test, so no example can silently go unrun.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ["writing-plugins.md", "testing.md"]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
FILE_LINE = re.compile(r"#\s*file:\s*(\S+)")


def blocks(doc: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(doc.read_text())]


def project_files(doc: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for lang, code in blocks(doc):
        first = code.split("\n", 1)[0]
        m = FILE_LINE.fullmatch(first.strip())
        if lang == "python":
            assert m, f"{doc.name}: a python block without a '# file: ...' first line:\n{code[:200]}"
        if m:
            path = m.group(1)
            assert path not in files, f"{doc.name}: {path} appears twice"
            files[path] = code
    return files


@pytest.mark.parametrize("name", DOCS)
def test_doc_examples_run(name: str, tmp_path: Path) -> None:
    doc = REPO / "docs" / name
    files = project_files(doc)
    tests = {p: c for p, c in files.items() if re.match(r"tests/test_\w+\.py$", p)}
    assert tests, f"{name}: no test files among the examples"
    for path, code in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
        if path.endswith(".toml"):
            tomllib.loads(code)  # every TOML example parses
    if "pyproject.toml" not in files:
        (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    expected = sum(len(re.findall(r"^(?:async )?def test_", c, re.MULTILINE)) for c in tests.values())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "TRIOGATE"))}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "src"), str(tmp_path)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib", "tests"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert re.search(rf"\b{expected} passed\b", out), f"expected {expected} passed:\n{out[-3000:]}"
    assert not re.search(r"\b(skipped|xfailed|xpassed|deselected)\b", out), out[-3000:]


def test_local_hooks_example_passes_triogate_check(tmp_path: Path) -> None:
    """The gateway.toml + hook module of writing-plugins.md validate with the real CLI."""
    files = project_files(REPO / "docs" / "writing-plugins.md")
    for path in ("gateway.toml", "stamp_hooks.py"):
        (tmp_path / path).write_text(files[path])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST",))}
    env["TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    proc = subprocess.run([sys.executable, "-m", "triogate", "check", "-c", "gateway.toml"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gateway.toml: ok" in proc.stdout
