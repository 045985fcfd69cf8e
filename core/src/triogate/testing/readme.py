"""A plugin's README config table checked against its ``Config`` (what ``python -m triogate.docgen --check`` does)."""

from __future__ import annotations

import os
from pathlib import Path

from ..docgen import update_readme

__all__ = ["readme_is_current"]


def readme_is_current(plugin_dir: str | os.PathLike[str]) -> bool:
    """True when the table between the README's ``config-table`` markers is what docgen generates.

    ``plugin_dir`` holds the distribution's ``pyproject.toml`` and ``README.md``; when this is
    False, ``python -m triogate.docgen <plugin_dir>`` rewrites the table.
    """
    return update_readme(Path(plugin_dir), check=True)
