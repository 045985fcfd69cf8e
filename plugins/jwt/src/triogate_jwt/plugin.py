"""The jwt plugin: verify a bearer JWT in the auth phase and set ``ctx.principal``.

Failure never ends the auth phase by itself: the plugin records an RFC 6750 challenge
(``error="invalid_token"`` when a token was presented) and lets later auth plugins try;
the core answers 401 with every challenge if nobody authenticates. A valid token
without the required scopes/roles is a 403 ``insufficient_scope`` at once.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, NamedTuple

import jwt
import triogate
from triogate.auth import (
    check_anonymous,
    claim,
    claim_header_value,
    consumer_principal,
    find_token,
    invalid_time_claim,
    is_authenticated,
    map_subjects,
    missing_credential,
    note_outcome,
    reject_credential,
    set_consumer_headers,
    strip_token,
)
from triogate.jwks import SUPPORTED_ALGORITHMS, JWKSSource, KeyRing, VerifyKey, pem_key, running_source, secret_key

from .claims import roles_of, scopes_of
from .config import JwtConfig
from .consumers import ConsumerKey, consumer_keys

__all__ = ["JwtPlugin"]



class _Identity(NamedTuple):
    """The caller a verified token names: kept with the token in the verified-token cache."""

    scopes: frozenset[str]
    roles: frozenset[str]
    consumer: str | None
    credential: str
    headers: tuple[tuple[str, str], ...]

class TokenRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: jwt.PyJWTError) -> str:
    for cls, reason in ((jwt.ExpiredSignatureError, "expired"), (jwt.ImmatureSignatureError, "not_yet_valid"),
                        (jwt.InvalidIssuerError, "bad_issuer"), (jwt.InvalidAudienceError, "bad_audience"),
                        (jwt.MissingRequiredClaimError, "missing_claim"), (jwt.InvalidIssuedAtError, "bad_iat"),
                        (jwt.InvalidSignatureError, "bad_signature"), (jwt.DecodeError, "malformed")):
        if isinstance(exc, cls):
            return reason
    return "invalid"


class JwtPlugin(triogate.Plugin):
    priority = 1450
    #: kid, iss, subject and public keys are shown; HMAC secrets are not (``triogate diff``)
    credential_secrets = frozenset({"secret"})
    Config = JwtConfig

    def __init__(self, config: JwtConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        c = config
        static: list[VerifyKey] = []
        if c.secret:
            static.append(secret_key(c.secret, c.secret_is_base64))
        static.extend(pem_key(pem, i) for i, pem in enumerate(c.public_keys))
        self.static = KeyRing(static)
        credentials = gateway.credentials("jwt")
        # kid (or iss) -> a consumer's key; keys looked up by the other claim are for other routes
        self.consumer_keys: dict[str, ConsumerKey] = consumer_keys(credentials)[c.key_claim_name]
        if not (static or c.jwks_uri or c.discovery or self.consumer_keys):
            raise ValueError("no keys: set secret, public_keys, jwks_uri, or issuer with discovery = true, "
                             f"or give consumers keys with {c.key_claim_name} = \"...\" under "
                             "[consumers.<name>.credentials.jwt]")
        owned = [ck.key for ck in self.consumer_keys.values()]
        possible = set(SUPPORTED_ALGORITHMS)
        if not (c.jwks_uri or c.discovery):  # only configured keys: what they can verify
            possible = set().union(*(k.algorithms for k in static + owned)) if static or owned else set()
        if c.algorithms:
            useless = [a for a in c.algorithms if a not in possible]
            if useless:
                raise ValueError(f"algorithms: no configured key can verify {', '.join(useless)}")
            possible &= set(c.algorithms)
        if c.secret and any(a.startswith("HS") for a in c.algorithms):
            short = [a for a in c.algorithms if a.startswith("HS") and a not in static[0].algorithms]
            if short:
                raise ValueError(f"secret: too short for {', '.join(short)} (HS384 needs 48 bytes, HS512 64)")
        self.allowed = frozenset(possible)
        self.source: JWKSSource | None = None  # set in startup when keys come from a JWKS
        self.options: dict[str, Any] = {
            "require": list(c.required_claims), "verify_signature": True, "verify_exp": True, "verify_nbf": True,
            "verify_iat": True, "verify_iss": c.issuer is not None, "verify_aud": bool(c.audience),
        }
        self.audience = list(c.audience) or None
        self.required_scopes = frozenset(c.scopes)
        self.required_roles = frozenset(c.roles)
        self.claim_headers = [(name, h.lower()) for name, h in c.claims_to_headers.items()]
        self.subjects = self._consumer_subjects(credentials)
        self.anonymous = check_anonymous(gateway, c.anonymous)
        self.challenge = f'Bearer realm="{c.realm}"'
        # sha256(token) -> (valid until (wall clock), key generation, claims, the consumer key that verified it)
        self.verified: OrderedDict[bytes, list[Any]] = OrderedDict()
        self.invalid = f'Bearer realm="{c.realm}", error="invalid_token"'

    # ------------------------------------------------------------------ setup

    def identity_headers(self) -> list[str]:
        """The claims_to_headers targets: the core removes client copies before any plugin runs."""
        return [h for _, h in self.claim_headers]

    def request_header_names(self) -> list[tuple[str, str]]:
        return [(f"header_names[{i}]", n) for i, n in enumerate(self.config.header_names)]

    def _consumer_subjects(self, credentials: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for consumer, table in credentials.items():
            where = f"consumers.{consumer}.credentials.jwt"
            if not isinstance(table, dict) or set(table) - {"subject", "keys"} or not set(table) & {"subject", "keys"}:
                raise ValueError(f"{where}: expected a table with subject = \"...\" (or [...]) and/or keys = [...]")
            if "subject" not in table or not self.config.consumer_claim:
                continue
            map_subjects(where, table["subject"], consumer, out)
        return out

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices) -> None:
        """One JWKS cache (and refresher) per URL and loaded config, shared by every instance that uses it."""
        c = self.config
        if not (c.jwks_uri or c.discovery):
            return
        issuer = c.issuer if c.discovery else None
        settings = {"jwks_uri": c.jwks_uri, "issuer": issuer, "ttl": c.jwks_ttl,
                    "min_interval": c.jwks_refresh_min_interval, "timeout": c.jwks_timeout}
        key = ("triogate_jwt", "jwks", *settings.values())
        self.source = await gateway.shared(key, lambda: running_source(gateway.http, **settings))

    # ------------------------------------------------------------------ verification

    async def verify(self, token: str) -> tuple[dict[str, Any], ConsumerKey | None]:
        """The token's claims and the consumer key that verified it (None: a plugin-level or JWKS key),
        or :class:`TokenRejected` with a reason safe to log.

        A verified token is remembered by its SHA-256 until its ``exp`` (at most 5 minutes, and
        only while the key set is unchanged): PyJWT's parsing costs ~200 µs per token.
        """
        entry = await self._verified(token)
        return entry[2], entry[3]

    async def _verified(self, token: str) -> list[Any]:
        """``[until, key generation, claims, owner, identity]``: the verified-token cache's entry
        (``identity`` is filled by :meth:`_identity` the first time a request uses it)."""
        c = self.config
        if len(token) > c.max_token_bytes:
            raise TokenRejected("oversized")
        if not c.verified_cache_size:
            claims, owner = await self._verify(token)
            return [0.0, 0, claims, owner, None]
        key = hashlib.sha256(token.encode()).digest()
        generation = self.source.generation if self.source is not None else 0
        now = time.time()
        hit = self.verified.get(key)
        if hit is not None:
            if hit[0] > now and hit[1] == generation:
                return hit
            del self.verified[key]
        claims, owner = await self._verify(token)
        exp = claims.get("exp")
        until = now + 300.0
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            until = min(until, exp + c.leeway)
        entry = [until, generation, claims, owner, None]
        self.verified[key] = entry
        if len(self.verified) > c.verified_cache_size:
            self.verified.popitem(last=False)
        return entry

    def _identity(self, token: str, claims: dict[str, Any], owner: ConsumerKey | None) -> _Identity:
        """What a verified token says about its caller, worked out once per cached token."""
        c = self.config
        consumer_name = None
        sub = claims.get("sub")
        credential = sub if isinstance(sub, str) and sub else "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        if owner is not None:  # verified with a consumer's own key: that consumer, whatever the sub says
            consumer_name, credential = owner.consumer, owner.credential
        elif c.consumer_claim:
            value = claim(claims, c.consumer_claim)
            consumer_name = self.subjects.get(value) if isinstance(value, str) else None
        headers = []
        for name, header in self.claim_headers:
            value = claim_header_value(claim(claims, name))
            if value is not None:
                headers.append((header, value))
        roles = roles_of(claims, c.roles_claim) if self.required_roles else frozenset()
        return _Identity(scopes_of(claims), roles, consumer_name, credential, tuple(headers))

    def _owner(self, token: str, kid: str | None) -> ConsumerKey | None:
        """The consumer key the token names by kid (JOSE header) or iss (claim, read before verification)."""
        if not self.consumer_keys:
            return None
        if self.config.key_claim_name == "kid":
            return self.consumer_keys.get(kid) if kid is not None else None
        try:
            iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise TokenRejected("malformed") from None
        return self.consumer_keys.get(iss) if isinstance(iss, str) else None

    async def _verify(self, token: str) -> tuple[dict[str, Any], ConsumerKey | None]:
        c = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.allowed:
            raise TokenRejected("algorithm")
        if "crit" in header:  # no JWS extension is understood here (RFC 7515 §4.1.11)
            raise TokenRejected("crit")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("malformed")
        owner = self._owner(token, kid)
        options, issuer = self.options, c.issuer
        if owner is not None:  # the consumer's key wins: plugin-level keys and the JWKS are not tried
            candidates = [owner.key] if alg in owner.key.algorithms else []
            if c.key_claim_name == "iss":  # iss named the key (and is signed): it is the consumer's, not `issuer`
                options, issuer = {**options, "verify_iss": False}, None
        else:
            src = self.source
            if src is not None and (src.loaded_at is None or (kid is not None and not src.ring.has_kid(kid))):
                await src.refresh_if_allowed()
            candidates = (src.ring.candidates(kid, alg) if src is not None else []) + self.static.candidates(kid, alg)
        if not candidates:
            raise TokenRejected("unknown_key")
        for key in candidates:
            try:
                claims = jwt.decode(token, key.key, algorithms=[alg], options=options,  # type: ignore[arg-type]
                                    audience=self.audience, issuer=issuer, leeway=c.leeway)
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise TokenRejected(_reason(exc)) from None
            break
        else:
            raise TokenRejected("bad_signature")
        if invalid_time_claim(claims) is not None:
            raise TokenRejected("bad_time")
        if c.max_lifetime:
            exp = claims.get("exp")
            if not isinstance(exp, (int, float)):
                raise TokenRejected("missing_claim")
            start = claims.get("iat") if isinstance(claims.get("iat"), (int, float)) else time.time()
            if exp - start > c.max_lifetime + c.leeway:
                raise TokenRejected("lifetime")
        return claims, owner

    # ------------------------------------------------------------------ the auth phase

    def _forbidden(self, ctx: triogate.Context, detail: str, scope: str | None) -> triogate.Response:
        challenge = f'Bearer realm="{self.config.realm}", error="insufficient_scope"'
        if scope:
            challenge += f', scope="{scope}"'
        note_outcome(ctx, "jwt:insufficient_scope")
        return ctx.problem(403, detail, headers=[("www-authenticate", challenge)])

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> triogate.Response | None:
        c = self.config
        req = ctx.request
        found = find_token(req, c.header_names, c.cookie_names, c.query_params)
        if found is not None and c.strip_credential:
            strip_token(req, found)
        if is_authenticated(ctx):
            return None  # an earlier auth plugin authenticated this request
        if found is None:
            missing_credential(ctx, self.challenge, anonymous=self.anonymous, method="jwt")
            return None
        token = found.token
        try:
            entry = await self._verified(token)
        except TokenRejected as exc:
            reject_credential(ctx, self.invalid, f"jwt:{exc.reason}")
            return None
        identity = entry[4]
        if identity is None:
            identity = entry[4] = self._identity(token, entry[2], entry[3])
        scopes = identity.scopes
        if self.required_scopes and not self.required_scopes <= scopes:
            return self._forbidden(ctx, "the token lacks a required scope", " ".join(sorted(self.required_scopes)))
        if self.required_roles and not self.required_roles & identity.roles:
            return self._forbidden(ctx, "the token lacks a required role", None)
        ctx.principal = consumer_principal(self.gateway, identity.consumer, method="jwt", credential=identity.credential,
                                           claims=entry[2], scopes=scopes)
        for header, value in identity.headers:
            req.headers.add(header, value)
        return None

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if self.config.consumer_headers:
            set_consumer_headers(ctx)
