"""Settings of the response-transform plugin.

Order: status mapping, then ``remove`` → ``rename`` → ``replace`` → ``add`` → ``append``
on headers and JSON body fields (the rule tables request-transform uses too, from
``triogate_transform_rules``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import attrs
import triogate_transform_rules as rules
from triogate import fields, setting
from triogate_transform_rules import AppendRules, RemoveRules, RenameRules, SetRules

__all__ = ["ResponseTransformConfig"]


def _status_map(inst: Any, name: str, value: dict[str, int]) -> Iterator[tuple[str, str]]:
    for k, v in value.items():
        if not k.isdigit() or not 200 <= int(k) <= 599:
            yield fields.key_path(name, k), f"expected a status code 200-599 as the key, got {k!r}"
        elif not 200 <= v <= 599:
            yield fields.key_path(name, k), f"expected a status code 200-599, got {v}"


@attrs.define(frozen=True)
class ResponseTransformConfig:
    remove: RemoveRules = setting(factory=RemoveRules, description="what to drop")
    rename: RenameRules = setting(factory=RenameRules, description="what to rename (values kept)")
    replace: SetRules = setting(factory=SetRules, description="new values for what is present (absent: nothing added)")
    add: SetRules = setting(factory=SetRules, description="values for what is absent (present: left alone)")
    append: AppendRules = setting(factory=AppendRules, description="header values added in any case")
    status: dict[str, int] = setting(
        factory=dict, description="status code mapping: { \"500\" = 502, \"404\" = 410 }",
        validator=fields.Check(_status_map))
    max_body_bytes: int = setting(
        1 << 20, description="largest response body the body rules read (502 beyond)",
        validator=fields.check(lambda v: v > 0, "a positive number of bytes", show_value=False))
    non_json_body: Literal["pass", "reject"] = setting(
        "pass", description="a response body that is not JSON when body rules exist: pass it untouched, or reject: 502")

    def __attrs_post_init__(self) -> None:
        if not (rules.has_rules(self.remove, self.rename, self.replace, self.add, self.append) or self.status):
            raise ValueError("no rule configured: give at least one of remove, rename, replace, add, append, status")
