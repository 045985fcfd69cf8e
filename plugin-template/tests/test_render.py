"""Render the copier template, install the result with the core into a fresh venv, run its tests.

This is what a plugin author does on day one; it must pass out of the box, with the commands
the rendered README's "Develop" section gives, run as written: ``python -m venv .venv``, then
``.venv/bin/pip install --find-links /path/to/triogate/dist -e '.[test]'`` with the placeholder
replaced by a folder ``make dist`` filled (the ``make_dist`` fixture of the root conftest.py,
built once per session), then ``.venv/bin/python -m pytest``. The core comes from its wheel (not
the source tree); nothing is installed with ``--no-deps``, so a dependency missing from either
pyproject.toml fails here. Takes ~15 s, mostly pip.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import copier
import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
REPO = TEMPLATE.parent
DIST_PLACEHOLDER = "/path/to/triogate/dist"
ANSWERS = {
    "plugin_name": "request-stamp",
    "description": "Stamps requests and responses with the request id.",
    "author_name": "Ada Lovelace",
    "author_email": "ada@example.com",
    "repository_url": "https://github.com/ada/triogate-request-stamp",
    "priority": 850,
}
EXPECTED_FILES = {
    ".copier-answers.yml", ".gitignore", "LICENSE", "README.md", "pyproject.toml",
    ".github/workflows/test.yml",
    "src/triogate_request_stamp/__init__.py", "src/triogate_request_stamp/config.py",
    "src/triogate_request_stamp/plugin.py",
    "tests/test_config.py", "tests/test_hooks.py",
}


def render(dest: Path, **answers: object) -> Path:
    copier.run_copy(str(TEMPLATE), str(dest), data={**ANSWERS, **answers}, defaults=True, quiet=True)
    return dest


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST", "TRIOGATE"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_rendered_file_set(tmp_path: Path) -> None:
    out = render(tmp_path / "p")
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files == EXPECTED_FILES
    meta = tomllib.loads((out / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["name"] == "triogate-request-stamp"
    assert project["entry-points"]["triogate.plugins"] == {"request-stamp": "triogate_request_stamp:RequestStampPlugin"}
    assert project["dependencies"] == ["triogate>=0.1,<0.2"]
    for key in ("description", "license", "requires-python", "classifiers", "urls", "authors", "readme"):
        assert project.get(key), key
    assert project["description"] == ANSWERS["description"]
    plugin_src = (out / "src/triogate_request_stamp/plugin.py").read_text()
    assert "priority = 850" in plugin_src
    for hook in ("pre_route", "auth", "transform", "post_response", "log"):
        assert f"async def {hook}(self" in plugin_src, hook
    readme = (out / "README.md").read_text()
    assert "<!-- config-table:start -->" in readme and "<!-- config-table:end -->" in readme
    answers = (out / ".copier-answers.yml").read_text()
    assert "plugin_name: request-stamp" in answers


def test_invalid_plugin_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render(tmp_path / "bad", plugin_name="Bad_Name")


def develop_commands(readme: str) -> list[list[str]]:
    """The commands of the README's "Develop" section (its first ``sh`` block), as argv lists."""
    m = re.search(r"^## Develop\n+```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert m, "no sh block under '## Develop'"
    return [shlex.split(line, comments=True) for line in m.group(1).splitlines() if line.strip()]


def test_rendered_plugin_passes_its_tests_in_a_fresh_venv(tmp_path: Path, make_dist: Path) -> None:
    started = time.monotonic()
    project = render(tmp_path / "triogate-request-stamp")
    commands = develop_commands((project / "README.md").read_text())
    assert commands == [
        ["python", "-m", "venv", ".venv"],
        [".venv/bin/pip", "install", "--find-links", DIST_PLACEHOLDER, "-e", ".[test]"],
        [".venv/bin/python", "-m", "pytest"],
    ]
    make_venv, install, pytest_cmd = commands
    run([sys.executable, *make_venv[1:]], project, 120)  # `python`: this interpreter
    run([str(make_dist) if arg == DIST_PLACEHOLDER else arg for arg in install], project, 300)
    installed = time.monotonic()
    py = project / ".venv" / "bin" / "python"
    # the core from its wheel in the venv, the plugin from the project (editable), nothing from the repository
    where = run([str(py), "-c", "import triogate, triogate_request_stamp as m; print(triogate.__file__); print(m.__file__)"],
                tmp_path, 60).stdout.split()
    assert where[0].startswith(str(project / ".venv")) and "site-packages" in where[0], where
    assert where[1] == str(project / "src" / "triogate_request_stamp" / "__init__.py"), where
    assert not any(w.startswith(str(REPO)) for w in where), where
    tests = run(pytest_cmd, project, 120)
    assert " passed" in tests.stdout and "failed" not in tests.stdout and "skipped" not in tests.stdout, tests.stdout
    # the README table the template ships is exactly what docgen generates from the Config
    run([str(py), "-m", "triogate.docgen", "--check", "."], project, 60)
    print(f"render+venv+install {installed - started:.1f}s, tests+docgen {time.monotonic() - installed:.1f}s")
