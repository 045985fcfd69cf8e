"""Turning a finished request into bounded label values."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BoundedLabel", "auth_failure", "cache_result", "method_label", "rate_limited", "status_class"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
_STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_REASON_OK = re.compile(r"[A-Za-z0-9_.:,+-]{1,64}")
OTHER = "other"


class BoundedLabel:
    """Lets through the first ``limit`` distinct values, then answers ``"other"``: bounded cardinality."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) < self.limit:
            self.seen.add(value)
            return value
        return OTHER


def method_label(method: str) -> str:
    return method if method in _METHODS else "OTHER"


def status_class(status: int) -> str:
    return _STATUS_CLASS.get(status // 100, "none")


def cache_result(value: str | None) -> str | None:
    """Classify the gateway's ``Cache-Status`` entry (RFC 9211): hit, stale, miss or bypass.

    The last list member is the cache closest to the client, i.e. the gateway's own.
    ``hit`` with a negative ``ttl`` is a stale response served; ``fwd=stale`` a stale entry
    revalidated upstream; ``fwd=bypass|method|request`` a request the cache did not serve from store.
    """
    if not value:
        return None
    member = value.rsplit(",", 1)[-1]
    params: dict[str, str] = {}
    for part in member.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        params[key.strip().lower()] = val.strip().strip('"').lower()
    if "hit" in params:
        ttl = params.get("ttl", "")
        return "stale" if ttl.startswith("-") else "hit"
    fwd = params.get("fwd")
    if fwd is None:
        return None
    if fwd == "stale":
        return "stale"
    if fwd in ("bypass", "method", "request"):
        return "bypass"
    return "miss"


def reason_of(ctx: Any, plugin: str) -> str | None:
    """A short machine-readable reason for a refusal, from what the plugins put in ``ctx.log_extra``.

    In order: ``reason``; the first-party auth plugins' ``authn`` notes (``"jwt:expired"``, several
    joined with ``", "``) -- those of ``plugin`` without their prefix when one plugin refused, all of
    them when the core refused for every auth plugin; a value logged under the plugin's own name
    (``acl = "denied"``). Values that are not short tokens are ignored.
    """
    extra = ctx.log_extra
    if not extra:
        return None
    reason = extra.get("reason")
    if isinstance(reason, str) and _REASON_OK.fullmatch(reason):
        return reason
    authn = extra.get("authn")
    if isinstance(authn, str) and authn:
        notes = [n.strip() for n in authn.split(",") if n.strip()]
        mine = [n.split(":", 1)[1] for n in notes if n.startswith(plugin + ":")]
        reason = ",".join(mine or notes)
        if _REASON_OK.fullmatch(reason):
            return reason
    own = extra.get(plugin, extra.get(plugin.replace("-", "_")))
    if isinstance(own, str) and _REASON_OK.fullmatch(own):
        return own
    return None


def auth_failure(ctx: Any) -> tuple[str, str] | None:
    """``(plugin, reason)`` when the request was refused with 401 or 403 by a plugin or by the core.

    The core's aggregated 401 (every auth plugin on the route left a challenge) is attributed
    to those plugins joined by ``+``.
    """
    status = ctx.status
    if status not in (401, 403) or ctx.short_circuit is None:
        return None
    plugin = ctx.short_circuit[0]
    if plugin == "core":
        route = ctx.route
        names = [n for n, _ in route.chain.auth] if route is not None and route.chain is not None else []
        plugin = "+".join(names) or "core"
    default = "unauthenticated" if status == 401 else "forbidden"
    return plugin, reason_of(ctx, plugin) or default


def rate_limited(ctx: Any) -> str | None:
    """The plugin that answered 429, if one did."""
    if ctx.status == 429 and ctx.short_circuit is not None:
        return ctx.short_circuit[0]
    return None
