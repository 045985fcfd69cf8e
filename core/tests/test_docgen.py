"""docgen: plugin config tables, including keyed tables of settings."""

from __future__ import annotations

from typing import Any

import attrs

from triogate import setting
from triogate.docgen import config_table


@attrs.define(frozen=True)
class _Item:
    url: str = setting(description="where")
    data: Any = setting(None, description="anything")


@attrs.define(frozen=True)
class _Conf:
    items: dict[str, _Item] = setting(factory=dict, description="items by name")
    n: int = setting(1, description="a number")


def test_keyed_tables_of_settings_are_flattened() -> None:
    table = config_table(_Conf)
    lines = table.splitlines()
    assert lines[2] == "| `items` | table of table | `{}` | items by name |"
    assert lines[3] == "| `items.<name>.url` | string | *required* | where |"
    assert lines[4] == "| `items.<name>.data` | any | unset | anything |"
    assert lines[5] == "| `n` | integer | `1` | a number |"
