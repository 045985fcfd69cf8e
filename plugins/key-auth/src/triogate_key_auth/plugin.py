"""The key-auth plugin: authenticate a request by an API key of a configured consumer."""

from __future__ import annotations

from urllib.parse import parse_qsl

import triogate
from triogate.auth import (
    check_anonymous,
    consumer_principal,
    is_authenticated,
    missing_credential,
    reject_credential,
    set_consumer_headers,
    strip_query_params,
)

from .config import KeyAuthConfig
from .keys import KeyTable

__all__ = ["KeyAuthPlugin"]


class KeyAuthPlugin(triogate.Plugin):
    priority = 1250
    #: the keys (plain or sha256: digests) are secrets (``triogate diff``)
    credential_secrets = frozenset({"keys"})
    Config = KeyAuthConfig

    def __init__(self, config: KeyAuthConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.keys = KeyTable(gateway.credentials("key-auth"))
        self.anonymous = check_anonymous(gateway, config.anonymous)
        self.header_names = list(config.key_names) if config.key_in_header else []
        self.query_names = frozenset(config.key_names) if config.key_in_query else frozenset()
        self.challenge = f'ApiKey realm="{config.realm}"'

    def request_header_names(self) -> list[tuple[str, str]]:
        """Key names read as headers only (a name with "_" still works as a query parameter)."""
        if not self.config.key_in_header or self.config.key_in_query:
            return []
        return [(f"key_names[{i}]", n) for i, n in enumerate(self.config.key_names)]

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
                    strip_query_params(req, self.query_names)
                return found
        return None

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        req = ctx.request  # client copies of x-consumer-* were removed by the core at admission
        key = self._find(req)
        if is_authenticated(ctx):
            return
        if key is None:
            missing_credential(ctx, self.challenge, anonymous=self.anonymous, method="key-auth")
            return
        match = self.keys.find(key) if key else None
        if match is None:
            reject_credential(ctx, self.challenge, "key-auth:invalid_key")
            return
        consumer, credential = match
        ctx.principal = consumer_principal(self.gateway, consumer, method="key-auth", credential=credential)

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if self.config.consumer_headers:
            set_consumer_headers(ctx)
