"""``make dist`` and the install-from-a-folder instructions (nothing is on PyPI yet).

- ``make dist`` writes exactly one wheel per distribution of the workspace that ships Python
  code (core, plugins/*, contrib/* except the recipe-only contrib/deploy), each named and
  versioned as its pyproject.toml says and holding its modules.
- The README's ``pip install --find-links ...`` line resolves every triogate distribution it
  needs, including dependencies that exist only in that folder (triogate-redis), from the folder
  (``pip install --dry-run --report``: a resolution, no venv).
- Every plugin and contrib library README gives both install forms: from a ``make dist`` folder
  today, from PyPI once published.

The ``make_dist`` fixture (conftest.py at the root) runs ``make dist`` once per session.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = "/path/to/triogate/dist"


def pyproject(d: Path) -> dict:
    return tomllib.loads((d / "pyproject.toml").read_text())


def ships_code(d: Path) -> bool:
    return pyproject(d).get("tool", {}).get("setuptools", {}).get("packages") != []


ALL = [REPO / "core"] + sorted(p.parent for p in [*REPO.glob("plugins/*/pyproject.toml"),
                                                  *REPO.glob("contrib/*/pyproject.toml")])
WHEEL_DISTS = [d for d in ALL if ships_code(d)]
# the demo services run from the checkout (`make run`); its README has no install line
DOCUMENTED = [d for d in WHEEL_DISTS if d.name not in ("core", "demo")]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_only_the_recipes_are_left_out() -> None:
    assert [d.relative_to(REPO).as_posix() for d in ALL if d not in WHEEL_DISTS] == ["contrib/deploy"]


def test_make_dist_builds_one_wheel_per_distribution(make_dist: Path) -> None:
    wheels = sorted(make_dist.glob("*.whl"))
    assert sorted(p.name for p in make_dist.iterdir()) == [w.name for w in wheels], "only wheels"
    found: dict[str, str] = {}
    for whl in wheels:
        with zipfile.ZipFile(whl) as z:
            names = z.namelist()
            [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
            headers = dict(line.split(": ", 1) for line in z.read(meta).decode().split("\n\n")[0].splitlines()
                           if ": " in line)
        assert normalize(headers["Name"]) not in found, f"two wheels of {headers['Name']}"
        found[normalize(headers["Name"])] = headers["Version"]
        assert any(n.endswith(".py") and ".dist-info/" not in n for n in names), f"{whl.name} holds no module"
    expected = {normalize(pyproject(d)["project"]["name"]): pyproject(d)["project"]["version"] for d in WHEEL_DISTS}
    assert found == expected


def readme_install_line() -> list[str]:
    """The ``pip install --find-links`` command of README.md's Install section, as argv."""
    section = re.search(r"^## Install\n(.*?)^## ", (REPO / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Install' section"
    lines = [ln.split("#")[0].strip() for ln in section.group(1).splitlines()
             if ln.startswith("pip install --find-links")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_readme_install_command_takes_triogate_from_the_folder(make_dist: Path, tmp_path: Path) -> None:
    argv = readme_install_line()
    assert argv[:4] == ["pip", "install", "--find-links", PLACEHOLDER], argv
    asked = argv[4:]
    assert "triogate-cache" in asked, "the example should show a dependency only the folder has (triogate-redis)"
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--find-links", str(make_dist), *asked,
                           "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    chosen = {normalize(i["metadata"]["name"]): i["download_info"]["url"]
              for i in json.loads(report.read_text())["install"]}
    ours = {n: url for n, url in chosen.items() if n.startswith("triogate")}
    assert set(ours) == {"triogate", "triogate-redis", *asked}, chosen
    for name, url in ours.items():
        assert url.startswith(make_dist.as_uri() + "/") and url.endswith(".whl"), (name, url)


@pytest.mark.parametrize("dist", DOCUMENTED, ids=lambda d: f"{d.parent.name}/{d.name}")
def test_readme_gives_both_install_forms(dist: Path) -> None:
    name = pyproject(dist)["project"]["name"]
    text = (dist / "README.md").read_text()
    assert re.search(rf"^pip install --find-links {PLACEHOLDER} {re.escape(name)}( |$)", text, re.MULTILINE), \
        f"{dist}: no `make dist` install line"
    assert re.search(rf"^pip install {re.escape(name)} +# once published on PyPI$", text, re.MULTILINE), \
        f"{dist}: no PyPI install line"
