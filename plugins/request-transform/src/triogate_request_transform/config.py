"""Settings of the request-transform plugin.

Rules run in this order: ``remove`` → ``rename`` → ``replace`` → ``add`` → ``append``,
each on headers, query parameters and JSON body fields.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from triogate import setting

__all__ = ["AppendRules", "RemoveRules", "RenameRules", "RequestTransformConfig", "SetRules"]


@attrs.define(frozen=True)
class RemoveRules:
    headers: list[str] = setting(factory=list, description="header names to drop")
    query: list[str] = setting(factory=list, description="query parameters to drop")
    body: list[str] = setting(factory=list, description="JSON body fields to drop (dotted paths)")


@attrs.define(frozen=True)
class RenameRules:
    headers: dict[str, str] = setting(factory=dict, description="{ old-name = \"new-name\" } for headers")
    query: dict[str, str] = setting(factory=dict, description="{ old = \"new\" } for query parameters")
    body: dict[str, str] = setting(factory=dict, description="{ \"old.path\" = \"new.path\" } for JSON body fields")


@attrs.define(frozen=True)
class SetRules:
    headers: dict[str, str] = setting(factory=dict, description="header name = value template")
    query: dict[str, str] = setting(factory=dict, description="query parameter = value template")
    body: dict[str, Any] = setting(factory=dict, description="JSON body field (dotted path) = JSON value (strings are templates)")


@attrs.define(frozen=True)
class AppendRules:
    headers: dict[str, str] = setting(factory=dict, description="header name = value template, added even when present")
    query: dict[str, str] = setting(factory=dict, description="query parameter = value template, added even when present")


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
    max_body_bytes: int = setting(1 << 20, description="largest request body the body rules read (413 beyond)")
    non_json_body: Literal["reject", "pass"] = setting(
        "reject", description="a body that is not JSON when body rules exist: reject: 415; pass: forward it untouched")

    def __attrs_post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes: expected a positive number of bytes")
        if not any((self.remove.headers, self.remove.query, self.remove.body, self.rename.headers, self.rename.query,
                    self.rename.body, self.replace.headers, self.replace.query, self.replace.body, self.add.headers,
                    self.add.query, self.add.body, self.append.headers, self.append.query, self.path, self.method)):
            raise ValueError("no rule configured: give at least one of remove, rename, replace, add, append, path, method")
