"""The key-auth plugin: authenticate a request by an API key of a configured consumer."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_plus

import triogate

from .config import KeyAuthConfig
from .keys import KeyTable

__all__ = ["KeyAuthPlugin", "AUTH_FAILED", "CONSUMER_HEADERS"]

AUTH_FAILED = "triogate.auth_failed"  # shared convention of the first-party auth plugins
CONSUMER_HEADERS = ("x-consumer-username", "x-consumer-custom-id", "x-anonymous-consumer")


def note(ctx: triogate.Context, outcome: str) -> None:
    """Why authentication failed, for the access log (``authn``; never the credential itself)."""
    prev = ctx.log_extra.get("authn")
    ctx.log_extra["authn"] = f"{prev}, {outcome}" if prev else outcome


def set_consumer_headers(ctx: triogate.Context) -> None:
    """Tell the upstream who the (final) consumer is; runs after every auth plugin had its turn."""
    p = ctx.principal
    consumer = ctx.gateway.consumers.get(p.consumer) if p is not None and p.consumer else None
    if consumer is None:
        return
    h = ctx.request.headers
    h.set("x-consumer-username", p.consumer)  # type: ignore[union-attr]
    if consumer.custom_id:
        h.set("x-consumer-custom-id", consumer.custom_id)
    if p.anonymous:  # type: ignore[union-attr]
        h.set("x-anonymous-consumer", "true")


class KeyAuthPlugin(triogate.Plugin):
    priority = 1250
    Config = KeyAuthConfig

    def __init__(self, config: KeyAuthConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.keys = KeyTable(gateway.credentials("key-auth"))
        if config.anonymous is not None and config.anonymous not in gateway.consumers:
            raise ValueError(f"anonymous: no consumer named {config.anonymous!r} in [consumers]")
        self.header_names = list(config.key_names) if config.key_in_header else []
        self.query_names = frozenset(config.key_names) if config.key_in_query else frozenset()
        self.challenge = f'ApiKey realm="{config.realm}"'

    def _find(self, req: triogate.Request) -> str | None:
        """The presented key (removed from the request when configured); "" when present but empty."""
        strip = self.config.strip_credential
        for name in self.header_names:
            value = req.headers.get(name)
            if value is not None:
                if strip:
                    req.headers.remove(name)
                return value.strip()
        if self.query_names and req.query:
            found = None
            for k, v in parse_qsl(req.query, keep_blank_values=True):
                if k in self.query_names:
                    found = v
                    break
            if found is not None:
                if strip:
                    req.query = "&".join(p for p in req.query.split("&")
                                         if p and unquote_plus(p.split("=", 1)[0]) not in self.query_names)
                return found
        return None

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        req = ctx.request
        if self.config.consumer_headers:
            req.headers.remove(*CONSUMER_HEADERS)
        key = self._find(req)
        if ctx.principal is not None and not ctx.principal.anonymous:
            return
        if key is None:
            ctx.challenge(self.challenge)
            anonymous = self.config.anonymous
            if anonymous is not None and ctx.principal is None and not ctx.state.get(AUTH_FAILED):
                ctx.principal = triogate.Principal(consumer=anonymous, groups=self.gateway.consumers[anonymous].groups,
                                                   anonymous=True, method="key-auth")
            return
        match = self.keys.find(key) if key else None
        if match is None:
            note(ctx, "key-auth:invalid_key")
            ctx.state[AUTH_FAILED] = True
            ctx.challenge(self.challenge)
            if ctx.principal is not None and ctx.principal.anonymous:
                ctx.principal = None
            return
        consumer, credential = match
        ctx.principal = triogate.Principal(consumer=consumer, credential=credential,
                                           groups=self.gateway.consumers[consumer].groups, method="key-auth")

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if self.config.consumer_headers:
            set_consumer_headers(ctx)
