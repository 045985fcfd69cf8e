"""The basic-auth plugin: ``Authorization: Basic`` against consumers' bcrypt/argon2 hashes."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from base64 import b64decode
from collections import OrderedDict

import trio
import triogate
from triogate.auth import (
    check_anonymous,
    consumer_principal,
    is_authenticated,
    missing_credential,
    reject_credential,
    set_consumer_headers,
)

from .config import BasicAuthConfig
from .passwords import Users, dummy_hash, verify

__all__ = ["BasicAuthPlugin"]


def parse_basic(value: str) -> tuple[str, str] | None:
    """``(user, password)`` from a Basic credential (RFC 7617), None when malformed."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")  # present but malformed
    user, sep, password = raw.partition(":")
    return (user, password) if sep else ("", "")


class BasicAuthPlugin(triogate.Plugin):
    priority = 1100
    #: usernames are shown, password hashes (crackable offline) are not (``triogate diff``)
    credential_secrets = frozenset({"password_hash"})
    Config = BasicAuthConfig

    def __init__(self, config: BasicAuthConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.users = Users(gateway.credentials("basic-auth"))
        self.anonymous = check_anonymous(gateway, config.anonymous)
        self.challenge = f'Basic realm="{config.realm}", charset="UTF-8"'
        self.limiter = trio.CapacityLimiter(config.max_concurrent_checks)
        self._cache_key = os.urandom(32)  # per instance: the cache holds HMACs, never passwords
        self._verified: OrderedDict[bytes, tuple[float, str]] = OrderedDict()

    async def _check(self, user: str, password: str) -> tuple[str, str] | None:
        """``(consumer, credential id)`` when the pair is right."""
        entry = self.users.by_name.get(user)
        mac = hmac.new(self._cache_key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        now = trio.current_time()
        hit = self._verified.get(mac)
        if hit is not None and entry is not None and hit[0] > now and hit[1] == entry[1]:
            return entry[0], entry[1]
        stored = entry[2] if entry is not None else dummy_hash()
        ok = await trio.to_thread.run_sync(verify, stored, password, limiter=self.limiter)
        if not ok or entry is None:
            return None
        if self.config.cache_ttl:
            self._verified[mac] = (now + self.config.cache_ttl, entry[1])
            self._verified.move_to_end(mac)
            while len(self._verified) > self.config.cache_size:
                self._verified.popitem(last=False)
        return entry[0], entry[1]

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        req = ctx.request  # client copies of x-consumer-* were removed by the core at admission
        values = [v for v in req.headers.get_all("authorization") if v.strip().lower().startswith("basic ")]
        pair = parse_basic(values[0]) if values else None
        if pair is not None and self.config.strip_credential:
            req.headers.remove("authorization")
        if is_authenticated(ctx):
            return
        if pair is None:
            missing_credential(ctx, self.challenge, anonymous=self.anonymous, method="basic-auth")
            return
        match = await self._check(*pair) if pair[0] else None
        if match is None:
            reject_credential(ctx, self.challenge, "basic-auth:invalid_credentials")
            return
        consumer, credential = match
        ctx.principal = consumer_principal(self.gateway, consumer, method="basic-auth", credential=credential)

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if self.config.consumer_headers:
            set_consumer_headers(ctx)
