"""How config errors show a value: as the user wrote it in TOML, with its kind.

Shared by the config models (:mod:`triogate.config`) and the plugin tables
(:mod:`triogate.plugins`), so both say ``got a string "2"`` the same way.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["describe", "toml_repr"]


def describe(value: Any) -> str:
    """A value as the user wrote it in TOML, with its kind: ``a string "2"``, ``a boolean true``."""
    if isinstance(value, bool):
        return f"a boolean {'true' if value else 'false'}"
    if isinstance(value, str):
        return f"a string {toml_repr(value)}"
    if isinstance(value, int):
        return f"an integer {value}"
    if isinstance(value, float):
        return f"a number {value}"
    if isinstance(value, list):
        return f"an array {_short(toml_repr(value))}"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value!r}"  # datetimes and the like


def toml_repr(value: Any) -> str:
    """A value in TOML-ish (JSON) notation; ``repr`` when it has none."""
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
