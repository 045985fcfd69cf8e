"""The basic-auth plugin: ``Authorization: Basic`` against consumers' bcrypt/argon2 hashes."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from collections import OrderedDict
from base64 import b64decode

import trio
import triogate

from .config import BasicAuthConfig
from .passwords import Users, dummy_hash, verify

__all__ = ["BasicAuthPlugin", "AUTH_FAILED", "CONSUMER_HEADERS"]

AUTH_FAILED = "triogate.auth_failed"  # shared convention of the first-party auth plugins
CONSUMER_HEADERS = ("x-consumer-username", "x-consumer-custom-id", "x-anonymous-consumer")


def note(ctx: triogate.Context, outcome: str) -> None:
    """Why authentication failed, for the access log (``authn``; never the credential itself)."""
    prev = ctx.log_extra.get("authn")
    ctx.log_extra["authn"] = f"{prev}, {outcome}" if prev else outcome


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
    Config = BasicAuthConfig

    def __init__(self, config: BasicAuthConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.users = Users(gateway.credentials("basic-auth"))
        if config.anonymous is not None and config.anonymous not in gateway.consumers:
            raise ValueError(f"anonymous: no consumer named {config.anonymous!r} in [consumers]")
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

    def _fail(self, ctx: triogate.Context) -> None:
        note(ctx, "basic-auth:invalid_credentials")
        ctx.state[AUTH_FAILED] = True
        ctx.challenge(self.challenge)
        if ctx.principal is not None and ctx.principal.anonymous:
            ctx.principal = None

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        req = ctx.request
        if self.config.consumer_headers:
            req.headers.remove(*CONSUMER_HEADERS)
        values = [v for v in req.headers.get_all("authorization") if v.strip().lower().startswith("basic ")]
        pair = parse_basic(values[0]) if values else None
        if pair is not None and self.config.strip_credential:
            req.headers.remove("authorization")
        if ctx.principal is not None and not ctx.principal.anonymous:
            return
        if pair is None:
            ctx.challenge(self.challenge)
            anonymous = self.config.anonymous
            if anonymous is not None and ctx.principal is None and not ctx.state.get(AUTH_FAILED):
                ctx.principal = triogate.Principal(consumer=anonymous, groups=self.gateway.consumers[anonymous].groups,
                                                   anonymous=True, method="basic-auth")
            return
        match = await self._check(*pair) if pair[0] else None
        if match is None:
            self._fail(ctx)
            return
        consumer, credential = match
        ctx.principal = triogate.Principal(consumer=consumer, credential=credential,
                                           groups=self.gateway.consumers[consumer].groups, method="basic-auth")

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if not self.config.consumer_headers:
            return
        p = ctx.principal
        consumer = self.gateway.consumers.get(p.consumer) if p is not None and p.consumer else None
        if consumer is None:
            return
        h = ctx.request.headers
        h.set("x-consumer-username", p.consumer)  # type: ignore[union-attr]
        if consumer.custom_id:
            h.set("x-consumer-custom-id", consumer.custom_id)
        if p.anonymous:  # type: ignore[union-attr]
            h.set("x-anonymous-consumer", "true")
