"""What a policy counts by: the subject of a request (consumer, credential, ip, header, route, path, global)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from triogate import Context

from .config import PolicyConfig

__all__ = ["subject_function"]

Subject = Callable[[Context], "str | None"]


def _digest(value: str) -> str:
    """Keys never hold credentials or header values in clear; 96 bits is plenty to tell them apart."""
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _consumer(ctx: Context) -> str | None:
    p = ctx.principal
    return f"c:{p.consumer}" if p is not None and p.consumer and not p.anonymous else None


def _credential(ctx: Context) -> str | None:
    p = ctx.principal
    return f"k:{_digest(p.credential)}" if p is not None and p.credential and not p.anonymous else None


def _ip(ctx: Context) -> str | None:
    return f"i:{ctx.client_ip}"


def _route(ctx: Context) -> str | None:
    return f"r:{ctx.route.name}" if ctx.route is not None else "r:-"


def _path(ctx: Context) -> str | None:
    path = ctx.request.path
    return f"p:{path}" if len(path) <= 64 else f"p#{_digest(path)}"


def _global(ctx: Context) -> str | None:
    return "g"


def subject_function(policy: PolicyConfig) -> Subject:
    """The function giving a request's subject under ``policy`` (fallback applied); None = not limited."""
    if policy.key == "header":
        name = policy.key_header

        def base(ctx: Context) -> str | None:
            value = ctx.request.headers.get(name)
            return f"h:{_digest(value)}" if value else None
    else:
        base = {"consumer": _consumer, "credential": _credential, "ip": _ip, "route": _route, "path": _path,
                "global": _global}[policy.key]
    if policy.key in ("ip", "route", "path", "global") or policy.fallback == "allow":
        return base

    def with_ip_fallback(ctx: Context) -> str | None:
        return base(ctx) or _ip(ctx)

    return with_ip_fallback
