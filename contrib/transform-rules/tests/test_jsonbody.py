"""JSON media types, strict parsing, compact encoding."""

from __future__ import annotations

import pytest
from triogate_transform_rules import dumps, is_json, loads


@pytest.mark.parametrize(("ct", "expected"), [
    ("application/json", True), ("Application/JSON; charset=utf-8", True), ("application/problem+json", True),
    ("application/vnd.api+json ;x=1", True), ("text/json", False), ("application/jsonx", False),
    ("text/plain", False), ("", False), (None, False),
])
def test_is_json(ct: str | None, expected: bool) -> None:
    assert is_json(ct) is expected


def test_strict_loads_and_compact_dumps() -> None:
    assert loads(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    for bad in (b"NaN", b'{"a": Infinity}', b"-Infinity", b"{"):
        with pytest.raises(ValueError):
            loads(bad)
    assert dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()
