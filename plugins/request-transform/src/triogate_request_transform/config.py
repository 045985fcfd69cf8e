"""Settings of the request-transform plugin.

Rules run in this order: ``remove`` → ``rename`` → ``replace`` → ``add`` → ``append``,
each on headers, query parameters and JSON body fields. The header and body parts of each
rule table are the ones response-transform uses too (``triogate_transform_rules``); this
plugin adds query parameters.
"""

from __future__ import annotations

from typing import Literal

import attrs
import triogate_transform_rules as rules
from triogate import fields, setting

__all__ = ["AppendRules", "RemoveRules", "RenameRules", "RequestTransformConfig", "SetRules"]


@attrs.define(frozen=True)
class RemoveRules(rules.RemoveRules):
    query: list[str] = setting(factory=list, description="query parameters to drop")


@attrs.define(frozen=True)
class RenameRules(rules.RenameRules):
    query: dict[str, str] = setting(factory=dict, description="{ old = \"new\" } for query parameters")


@attrs.define(frozen=True)
class SetRules(rules.SetRules):
    query: dict[str, str] = setting(factory=dict, description="query parameter = value template")


@attrs.define(frozen=True)
class AppendRules(rules.AppendRules):
    query: dict[str, str] = setting(
        factory=dict, description="query parameter = value template, added even when present")


@attrs.define(frozen=True)
class RequestTransformConfig:
    remove: RemoveRules = setting(factory=RemoveRules, description="what to drop")
    rename: RenameRules = setting(factory=RenameRules, description="what to rename (values kept)")
    replace: SetRules = setting(factory=SetRules, description="new values for what is present (absent: nothing added)")
    add: SetRules = setting(factory=SetRules, description="values for what is absent (present: left alone)")
    append: AppendRules = setting(factory=AppendRules, description="values added in any case (repeated headers and parameters)")
    path: str | None = setting(
        None, description="new upstream path, a template: /v2/users/{id}; {rest} as last segment is the rest of the path")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] | None = setting(
        None, description="new request method")
    max_body_bytes: int = setting(
        1 << 20, description="largest request body the body rules read (413 beyond)",
        validator=fields.check(lambda v: v > 0, "a positive number of bytes", show_value=False))
    non_json_body: Literal["reject", "pass"] = setting(
        "reject", description="a body that is not JSON when body rules exist: reject: 415; pass: forward it untouched")

    def __attrs_post_init__(self) -> None:
        if not (rules.has_rules(self.remove, self.rename, self.replace, self.add, self.append)
                or self.path or self.method):
            raise ValueError("no rule configured: give at least one of remove, rename, replace, add, append, path, method")
