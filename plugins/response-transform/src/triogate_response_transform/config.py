"""Settings of the response-transform plugin.

Order: status mapping, then ``remove`` → ``rename`` → ``replace`` → ``add`` → ``append``
on headers and JSON body fields.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from triogate import setting

__all__ = ["ResponseTransformConfig"]


@attrs.define(frozen=True)
class RemoveRules:
    headers: list[str] = setting(factory=list, description="response header names to drop")
    body: list[str] = setting(factory=list, description="JSON body fields to drop (dotted paths)")


@attrs.define(frozen=True)
class RenameRules:
    headers: dict[str, str] = setting(factory=dict, description="{ old-name = \"new-name\" } for response headers")
    body: dict[str, str] = setting(factory=dict, description="{ \"old.path\" = \"new.path\" } for JSON body fields")


@attrs.define(frozen=True)
class SetRules:
    headers: dict[str, str] = setting(factory=dict, description="response header name = value template")
    body: dict[str, Any] = setting(factory=dict, description="JSON body field (dotted path) = JSON value (strings are templates)")


@attrs.define(frozen=True)
class AppendRules:
    headers: dict[str, str] = setting(factory=dict, description="response header name = value template, added even when present")


@attrs.define(frozen=True)
class ResponseTransformConfig:
    remove: RemoveRules = setting(factory=RemoveRules, description="what to drop")
    rename: RenameRules = setting(factory=RenameRules, description="what to rename (values kept)")
    replace: SetRules = setting(factory=SetRules, description="new values for what is present (absent: nothing added)")
    add: SetRules = setting(factory=SetRules, description="values for what is absent (present: left alone)")
    append: AppendRules = setting(factory=AppendRules, description="header values added in any case")
    status: dict[str, int] = setting(factory=dict, description="status code mapping: { \"500\" = 502, \"404\" = 410 }")
    max_body_bytes: int = setting(1 << 20, description="largest response body the body rules read (502 beyond)")
    non_json_body: Literal["pass", "reject"] = setting(
        "pass", description="a response body that is not JSON when body rules exist: pass it untouched, or reject: 502")

    def __attrs_post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes: expected a positive number of bytes")
        for k, v in self.status.items():
            if not k.isdigit() or not 200 <= int(k) <= 599:
                raise ValueError(f"status.{k}: expected a status code 200-599 as the key, got {k!r}")
            if not 200 <= v <= 599:
                raise ValueError(f"status.{k}: expected a status code 200-599, got {v}")
        if not any((self.remove.headers, self.remove.body, self.rename.headers, self.rename.body, self.replace.headers,
                    self.replace.body, self.add.headers, self.add.body, self.append.headers, self.status)):
            raise ValueError("no rule configured: give at least one of remove, rename, replace, add, append, status")
