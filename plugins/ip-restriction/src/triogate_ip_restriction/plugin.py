"""The ip-restriction plugin: refuse clients by address in ``pre_route``.

The address is ``ctx.client_ip``: the socket peer, or the client named in
``X-Forwarded-For`` when the peer is one of ``[gateway] trusted_proxies`` (the core
decides; a forged header from an untrusted peer is ignored). A global instance
refuses before routing, so blocked clients learn nothing about the routes.
"""

from __future__ import annotations

import triogate

from .config import IpRestrictionConfig
from .networks import NetworkSet, parse_client


class IpRestrictionPlugin(triogate.Plugin):
    priority = 1990
    Config = IpRestrictionConfig

    def __init__(self, config: IpRestrictionConfig, gateway: triogate.GatewayServices,
                 route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.allow = NetworkSet(config.allow)
        self.deny = NetworkSet(config.deny)

    def allowed(self, client_ip: str) -> bool:
        ip = parse_client(client_ip)
        if ip is None:
            return False  # not an address we understand: refuse rather than guess
        if ip in self.deny:
            return False
        return not self.allow or ip in self.allow

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> triogate.Response | None:
        if self.allowed(ctx.client_ip):
            return None
        ctx.log_extra["ip_restriction"] = "refused"
        return ctx.problem(self.config.status, self.config.message)
