"""The aggregate plugin's settings: one route, several backends."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs
from triogate import setting
from triogate_transform_rules import MANAGED_HEADERS, is_token

__all__ = ["AggregateConfig", "BackendConfig"]

_BACKEND_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_FIELD_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")


@attrs.define(frozen=True)
class BackendConfig:
    upstream: str = setting(description="name of the [upstreams.<name>] to call (its balancing, health and pools apply)")
    path: str = setting(
        description="request target template: /users/{id}, /orders?user={principal.sub}, /x/{resp.user.id}")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = setting(
        "GET", description="HTTP method (backends get no request body)")
    forward_headers: list[str] = setting(
        factory=list, description="client request headers copied to this backend (e.g. authorization)")
    headers: dict[str, str] = setting(
        factory=dict, description="headers to send, values are templates: { x-user = \"{principal.sub}\" }")
    timeout: float = setting(2.0, description="seconds this backend may take (response and body)")
    required: bool = setting(True, description="a required backend that fails fails the whole request")
    fallback: Any = setting(
        None, description="data used as this backend's response body when it fails (optional backends only)")
    max_body_bytes: int | None = setting(None, description="largest response body accepted; unset: the route's max_body_bytes")
    target: str | None = setting(None, description="take only this (dotted) field of the response, e.g. data.user")
    allow: list[str] = setting(factory=list, description="keep only these (dotted) fields; empty keeps all")
    deny: list[str] = setting(factory=list, description="drop these (dotted) fields")
    mapping: dict[str, str] = setting(factory=dict, description="rename (dotted) fields: { email = \"contact.email\" }")
    collection: str | None = setting(
        None, description="key that wraps an array (or scalar) response; default: the backend's name, or the group")
    group: str | None = setting(None, description="put this backend's result under this key instead of merging it into the root")


@attrs.define(frozen=True)
class AggregateConfig:
    backends: dict[str, BackendConfig] = setting(
        description="backends to call, by name (the name is used in {resp.<name>.<field>} and error details)")
    deadline: float = setting(5.0, description="seconds the whole aggregation may take (504 or a partial answer beyond)")
    on_failure: Literal["partial", "fail"] = setting(
        "partial", description="partial: optional backends may fail (answer marked incomplete); fail: any failure fails the request")
    conflict: Literal["last-wins", "first-wins"] = setting(
        "last-wins", description="when two backends merge the same root key: the later- or the earlier-declared one wins")
    error_details: bool = setting(False, description="add per-backend error details to partial answers and failures")
    error_key: str = setting("_errors", description="root key of the per-backend error details")
    max_body_bytes: int = setting(1 << 20, description="largest backend response body accepted, in bytes")
    status: int = setting(200, description="status of a successful (complete or partial) answer")

    def __attrs_post_init__(self) -> None:
        if not self.backends:
            raise ValueError("backends: expected at least one backend")
        if self.deadline <= 0:
            raise ValueError("deadline: expected a positive number of seconds")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes: expected a positive number of bytes")
        if not 200 <= self.status <= 299:
            raise ValueError("status: expected a 2xx status")
        for name, b in self.backends.items():
            where = f"backends.{name}"
            if _BACKEND_NAME.fullmatch(name) is None:
                raise ValueError(f"{where}: a backend name is letters, digits, _ and - (it is used in {{resp.{name}...}})")
            if b.timeout <= 0:
                raise ValueError(f"{where}.timeout: expected a positive number of seconds")
            if b.max_body_bytes is not None and b.max_body_bytes <= 0:
                raise ValueError(f"{where}.max_body_bytes: expected a positive number of bytes")
            if b.fallback is not None and b.required:
                raise ValueError(f"{where}.fallback: only an optional backend (required = false) has fallback data")
            for key in ("target", "collection", "group"):
                value = getattr(b, key)
                if value is not None and _FIELD_PATH.fullmatch(value) is None:
                    raise ValueError(f"{where}.{key}: expected a field name, got {value!r}")
            for key in ("collection", "group"):
                value = getattr(b, key)
                if value is not None and "." in value:
                    raise ValueError(f"{where}.{key}: expected a single key without dots, got {value!r}")
            for i, f in enumerate(b.allow):
                if _FIELD_PATH.fullmatch(f) is None:
                    raise ValueError(f"{where}.allow[{i}]: expected a (dotted) field name, got {f!r}")
            for i, f in enumerate(b.deny):
                if _FIELD_PATH.fullmatch(f) is None:
                    raise ValueError(f"{where}.deny[{i}]: expected a (dotted) field name, got {f!r}")
            for src, dst in b.mapping.items():
                if _FIELD_PATH.fullmatch(src) is None or _FIELD_PATH.fullmatch(dst) is None:
                    raise ValueError(f"{where}.mapping: expected (dotted) field names, got {src!r} = {dst!r}")
            for i, h in enumerate(b.forward_headers):
                if not is_token(h) or h.lower() in MANAGED_HEADERS:
                    raise ValueError(f"{where}.forward_headers[{i}]: cannot forward header {h!r}")
            for h in b.headers:
                if not is_token(h) or h.lower() in MANAGED_HEADERS:
                    raise ValueError(f"{where}.headers: cannot set header {h!r}")
