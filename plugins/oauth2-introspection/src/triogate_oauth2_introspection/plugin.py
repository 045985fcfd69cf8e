"""The oauth2-introspection plugin: ask the authorization server whether a bearer token is active.

Cached by token hash (active results until ``min(exp, cache_ttl)``, inactive ones for
``negative_cache_ttl``), concurrent lookups of one token coalesced into one call, and
fail closed: no answer within ``timeout`` is a 503, never a pass.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

import trio
import triogate
from triogate.auth import (
    check_anonymous,
    claim,
    claim_header_value,
    consumer_principal,
    find_token,
    invalid_time_claim,
    is_authenticated,
    missing_credential,
    note_outcome,
    reject_credential,
    set_consumer_headers,
    strip_token,
    word_set,
)

from .cache import Coalescer, ResultCache, Unavailable
from .config import IntrospectionConfig

__all__ = ["IntrospectionPlugin"]

log = logging.getLogger("triogate.oauth2-introspection")


class IntrospectionPlugin(triogate.Plugin):
    priority = 1700
    #: client ids and subjects that name a consumer are not secrets (``triogate diff``)
    credential_secrets = frozenset()
    Config = IntrospectionConfig

    def __init__(self, config: IntrospectionConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        c = config
        self.cache = ResultCache(c.cache_size)
        self.coalescer = Coalescer()
        headers = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")]
        self.form_extra: dict[str, str] = {}
        if c.token_type_hint:
            self.form_extra["token_type_hint"] = c.token_type_hint
        if c.client_id is not None and c.client_secret is not None:
            if c.auth_method == "client_secret_basic":
                pair = f"{quote(c.client_id, safe='')}:{quote(c.client_secret, safe='')}"
                headers.append(("authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
            else:
                self.form_extra.update(client_id=c.client_id, client_secret=c.client_secret)
        self.headers = headers
        self.required_scopes = frozenset(c.scopes)
        self.audience = frozenset(c.audience)
        self.client_ids = frozenset(c.client_ids)
        self.forward = [(field, h.lower()) for field, h in c.forward_headers.items()]
        self.anonymous = check_anonymous(gateway, c.anonymous)
        self.consumers = self._consumer_table()
        self.challenge = f'Bearer realm="{c.realm}"'
        self.invalid = f'Bearer realm="{c.realm}", error="invalid_token"'

    def _consumer_table(self) -> dict[str, str]:
        """``{value of consumer_claim: consumer name}``; ValueError (with the key path) on a value owned twice."""
        c = self.config
        out: dict[str, str] = {}
        if not c.consumer_claim:
            return {}
        if c.consumer_by == "name":
            return {name: name for name in self.gateway.consumers}
        if c.consumer_by == "custom_id":
            for name, consumer in self.gateway.consumers.items():
                if consumer.custom_id is not None and out.setdefault(consumer.custom_id, name) != name:
                    raise ValueError(f"consumers.{name}.custom_id: {consumer.custom_id!r} is also the custom_id of "
                                     f"consumer {out[consumer.custom_id]!r} (consumer_by = \"custom_id\" needs unique ones)")
            return out
        for name, table in self.gateway.credentials("oauth2-introspection").items():
            where = f"consumers.{name}.credentials.oauth2-introspection"
            if not isinstance(table, dict) or not table:
                raise ValueError(f'{where}: expected a table such as {{ client_id = "..." }} (or a list of values)')
            for field, values in table.items():
                values = values if isinstance(values, list) else [values]
                if not values or not all(isinstance(v, str) and v for v in values):
                    raise ValueError(f"{where}.{field}: expected a non-empty string or list of strings")
                if field != c.consumer_claim:
                    continue  # a value for another route's consumer_claim
                for v in values:
                    if out.setdefault(v, name) != name:
                        raise ValueError(f"{where}.{field}: {v!r} already belongs to consumer {out[v]!r}")
        return out

    def identity_headers(self) -> list[str]:
        """The forward_headers targets: the core removes client copies before any plugin runs."""
        return [h for _, h in self.forward]

    def request_header_names(self) -> list[tuple[str, str]]:
        return [(f"header_names[{i}]", n) for i, n in enumerate(self.config.header_names)]

    # ------------------------------------------------------------------ introspection

    async def _introspect(self, token: str) -> dict[str, Any]:
        c = self.config
        body = urlencode({"token": token, **self.form_extra}).encode()
        try:
            resp = await self.gateway.http.fetch("POST", c.introspection_url, headers=self.headers, body=body,
                                                 timeout=c.timeout, limit=1 << 20)
        except (triogate.GatewayError, triogate.BodyTooLarge, OSError) as exc:
            log.error("introspection at %s failed: %s", c.introspection_url, type(exc).__name__)
            raise Unavailable() from None
        if resp.status != 200:
            log.error("introspection at %s answered %d", c.introspection_url, resp.status)
            raise Unavailable()
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("active"), bool):
            log.error("introspection at %s: not an RFC 7662 response", c.introspection_url)
            raise Unavailable()
        return data

    async def _lookup(self, key: bytes, token: str) -> dict[str, Any]:
        c = self.config
        data = await self._introspect(token)
        active = data["active"] is True
        remaining = c.cache_ttl
        if active and (bad := invalid_time_claim(data)) is not None:
            # exp = 10**400 or NaN is no date (and overflows the arithmetic below): not believed
            log.warning("introspection at %s: active token with an invalid %s; treated as inactive",
                        c.introspection_url, bad)
            active = False
        exp = data.get("exp")
        if active and exp is not None:
            left = exp - time.time()
            if left <= 0:
                active = False  # a server that calls an expired token active is not believed
            remaining = min(remaining, left)
        if not active:
            data = {"active": False}
            remaining = c.negative_cache_ttl
        if remaining > 0:
            self.cache.put(key, data, trio.current_time() + remaining)
        return data

    async def lookup(self, token: str) -> dict[str, Any]:
        """The (possibly cached) introspection result; :class:`Unavailable` when there is none in time."""
        key = hashlib.sha256(token.encode()).digest()
        hit = self.cache.get(key, trio.current_time())
        if hit is not None:
            return hit
        return await self.coalescer.run(key, lambda: self._lookup(key, token), self.gateway.nursery,
                                        self.config.timeout + 0.5)

    def _acceptable(self, data: dict[str, Any]) -> str | None:
        """Why an active token is not for this route (None if it is)."""
        c = self.config
        now = time.time()
        nbf = data.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now:
            return "not_yet_valid"
        if c.issuer is not None and "iss" in data and data["iss"] != c.issuer:
            return "bad_issuer"
        if self.audience:
            aud = data.get("aud")
            auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if not auds & self.audience:
                return "bad_audience"
        if self.client_ids and data.get("client_id") not in self.client_ids:
            return "bad_client"
        return None

    # ------------------------------------------------------------------ the auth phase

    def _fail(self, ctx: triogate.Context, reason: str) -> None:
        reject_credential(ctx, self.invalid, f"oauth2-introspection:{reason}")

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> triogate.Response | None:
        c = self.config
        req = ctx.request
        found = find_token(req, c.header_names, c.cookie_names, c.query_params)
        if found is not None and c.strip_credential:
            strip_token(req, found)
        if is_authenticated(ctx):
            return None
        if found is None:
            missing_credential(ctx, self.challenge, anonymous=self.anonymous, method="oauth2-introspection")
            return None
        token = found.token
        if len(token) > c.max_token_bytes:
            self._fail(ctx, "oversized")
            return None
        try:
            data = await self.lookup(token)
        except Unavailable:
            note_outcome(ctx, "oauth2-introspection:unavailable")
            return ctx.problem(503, "token introspection is unavailable", headers=[("retry-after", "1")])
        if data.get("active") is not True:
            self._fail(ctx, "inactive")
            return None
        reason = self._acceptable(data)
        if reason is not None:
            self._fail(ctx, reason)
            return None
        scopes = word_set(data.get("scope"))
        if self.required_scopes and not self.required_scopes <= scopes:
            note_outcome(ctx, "oauth2-introspection:insufficient_scope")
            scope = " ".join(sorted(self.required_scopes))
            return ctx.problem(403, "the token lacks a required scope", headers=[(
                "www-authenticate", f'Bearer realm="{c.realm}", error="insufficient_scope", scope="{scope}"')])
        consumer = None
        if c.consumer_claim:
            value = claim(data, c.consumer_claim)
            consumer = self.consumers.get(value) if isinstance(value, str) else None
            if consumer is None and c.require_consumer:
                note_outcome(ctx, "oauth2-introspection:no_consumer")
                return ctx.problem(403, "the token belongs to no known consumer")
        ident = data.get("sub") or data.get("username") or data.get("client_id")
        credential = ident if isinstance(ident, str) else "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        ctx.principal = consumer_principal(self.gateway, consumer, method="oauth2-introspection",
                                           credential=credential, claims=data, scopes=scopes)
        for field, header in self.forward:
            value = claim_header_value(data.get(field))
            if value is not None:
                req.headers.add(header, value)
        return None

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if self.config.consumer_headers:
            set_consumer_headers(ctx)
