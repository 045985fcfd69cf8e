"""The acl plugin: after authentication, allow or deny by groups, roles, scopes or consumer.

It runs in the ``transform`` phase (priority 950), so the principal it sees is final: every auth
plugin has had its turn and the core has already answered 401 if none authenticated.
An anonymous principal is judged by its consumer's groups, like any other.
"""

from __future__ import annotations

import triogate
from triogate.auth import claim, word_set

from .config import AclConfig

__all__ = ["AclPlugin", "tags_of"]


def tags_of(principal: triogate.Principal, roles_claim: str) -> set[str]:
    """What the caller is, as acl entries: ``group:x``, ``role:x``, ``scope:x``, ``consumer:x``."""
    tags = {f"group:{g}" for g in principal.groups}
    tags.update(f"scope:{s}" for s in principal.scopes)
    if principal.claims:
        tags.update(f"role:{r}" for r in word_set(claim(principal.claims, roles_claim)))
    if principal.consumer:
        tags.add(f"consumer:{principal.consumer}")
    return tags


def _normalize(entries: list[str]) -> frozenset[str]:
    return frozenset(e if ":" in e else f"group:{e}" for e in entries)


class AclPlugin(triogate.Plugin):
    priority = 950
    Config = AclConfig

    def __init__(self, config: AclConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.allow = _normalize(config.allow)
        self.deny = _normalize(config.deny)

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> triogate.Response | None:
        p = ctx.principal
        if p is None:
            ctx.log_extra["acl"] = "no_principal"
            return ctx.problem(403, "access denied: no authenticated consumer")
        tags = tags_of(p, self.config.roles_claim)
        if tags & self.deny:
            ctx.log_extra["acl"] = "denied"
            return ctx.problem(403, "access denied")
        if self.allow and not tags & self.allow:
            ctx.log_extra["acl"] = "not_allowed"
            return ctx.problem(403, "access denied")
        return None
