"""Every plugin README's config table is what ``python -m triogate.docgen`` generates from its Config.

Runs ``triogate.docgen --check`` on each plugins/* and contrib/* directory whose README carries
the ``<!-- config-table:start -->`` / ``<!-- config-table:end -->`` markers; a stale table fails
with the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from triogate import docgen

REPO = Path(__file__).resolve().parents[1]
DIRS = sorted(
    d for d in [*REPO.glob("plugins/*"), *REPO.glob("contrib/*")]
    if (d / "pyproject.toml").exists() and (d / "README.md").exists()
    and docgen.START in (d / "README.md").read_text() and docgen.END in (d / "README.md").read_text()
)


def test_first_party_plugins_have_tables() -> None:
    names = {d.name for d in DIRS}
    assert {"cors", "ip-restriction", "request-size-limit"} <= names, names


@pytest.mark.parametrize("plugin_dir", DIRS, ids=lambda d: f"{d.parent.name}/{d.name}")
def test_config_table_is_current(plugin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = docgen.main(["--check", str(plugin_dir)])
    out = capsys.readouterr().out
    rel = plugin_dir.relative_to(REPO)
    assert code == 0, f"{out}run: .venv/bin/python -m triogate.docgen {rel}"


def test_check_fails_on_a_stale_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check really compares: a copy of a README with an edited table fails it."""
    src = REPO / "plugins" / "cors"
    copy = tmp_path / "cors"
    copy.mkdir()
    (copy / "pyproject.toml").write_text((src / "pyproject.toml").read_text())
    (copy / "README.md").write_text((src / "README.md").read_text().replace("`origins`", "`origin`", 1))
    assert docgen.main(["--check", str(copy)]) == 1
    assert "out of date" in capsys.readouterr().out
