"""Settings of the jwt plugin: the table under [plugins.jwt] or [routes.<r>.plugins.jwt]."""

from __future__ import annotations

from typing import Literal

import attrs
import triogate
from triogate import fields
from triogate.jwks import SUPPORTED_ALGORITHMS


def _algorithms(inst: JwtConfig, name: str, value: list[str]) -> list[tuple[str, str]]:
    for i, alg in enumerate(value):
        if alg.lower() == "none":
            return [(f"{name}[{i}]", '"none" is never accepted')]
        if alg not in SUPPORTED_ALGORITHMS:
            return [(f"{name}[{i}]", f"unknown algorithm {alg!r} (supported: {', '.join(SUPPORTED_ALGORITHMS)})")]
    return []


@attrs.define(frozen=True)
class JwtConfig(fields.TokenLocation):
    """Where the token is comes from :class:`triogate.fields.TokenLocation` (header_names, cookie_names, ...)."""

    # ---- keys
    secret: str | None = triogate.setting(
        None, description="HMAC secret for HS256/384/512 tokens (use ${ENV}); at least 32 bytes", secret=True)
    secret_is_base64: bool = triogate.setting(False, description="the secret is base64url-encoded bytes")
    public_keys: list[str] = triogate.setting(
        factory=list, description="PEM public keys or certificates; the key type decides the algorithms (RSA: RS*/PS*, EC: ES*, Ed25519/Ed448: EdDSA)")
    jwks_uri: str | None = triogate.setting(
        None, description="URL of a JWK Set to verify tokens with", validator=fields.http_url)
    issuer: str | None = triogate.setting(None, description="required iss claim (exact match)")
    discovery: bool = triogate.setting(
        False, description="find jwks_uri from {issuer}/.well-known/openid-configuration (OIDC discovery)")
    jwks_ttl: float = triogate.setting(
        300.0, description="seconds fetched keys are fresh; refreshed in the background this often",
        validator=fields.duration)
    jwks_refresh_min_interval: float = triogate.setting(
        30.0, description="least seconds between two JWKS fetches triggered by an unknown kid (rate limit)",
        validator=fields.duration_or_zero)
    jwks_timeout: float = triogate.setting(
        5.0, description="seconds a JWKS or discovery fetch may take", validator=fields.duration)
    algorithms: list[str] = triogate.setting(
        factory=list, description="accepted alg values; empty: every algorithm the configured keys can verify (never none)",
        validator=fields.Check(_algorithms))
    # ---- claims
    audience: list[str] = triogate.setting(
        factory=list, description="accepted aud values: the token's aud (string or list) must contain one; empty: no check")
    required_claims: list[str] = triogate.setting(
        factory=lambda: ["exp"], description="claims every token must carry")
    leeway: float = triogate.setting(
        0.0, description="seconds of clock skew allowed for exp, nbf and iat", validator=fields.duration_or_zero)
    max_lifetime: float = triogate.setting(
        0.0, description="longest accepted token lifetime in seconds (exp - iat, or exp - now); 0: no limit",
        validator=fields.duration_or_zero)
    scopes: list[str] = triogate.setting(
        factory=list, description="scopes the token must all have (scope string or scp list); 403 otherwise")
    roles: list[str] = triogate.setting(
        factory=list, description="roles of which the token must have at least one; 403 otherwise")
    roles_claim: str = triogate.setting("roles", description="claim holding roles (dotted path, e.g. realm_access.roles)")
    verified_cache_size: int = triogate.setting(
        10000, description="verified tokens remembered (by SHA-256) until exp, at most 5 minutes, dropped when keys change; 0 disables",
        validator=fields.at_least(0))
    max_token_bytes: int = triogate.setting(
        8192, description="longer tokens are rejected unparsed", validator=fields.at_least(64))
    # ---- identity
    claims_to_headers: dict[str, str] = triogate.setting(
        factory=dict, description="claim (dotted path) -> upstream header; client-sent copies of these headers are always dropped",
        validator=fields.header_name_values)
    consumer_claim: str = triogate.setting(
        "sub", description='claim matched against [consumers.*.credentials.jwt] subject; "" disables consumer mapping')
    key_claim_name: Literal["kid", "iss"] = triogate.setting(
        "kid", description="what names a consumer's own key ([consumers.*.credentials.jwt] keys): the token's kid header or its iss claim")
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer (client copies are always dropped)")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no token is presented (instead of 401); must exist in [consumers]")
    realm: str = triogate.setting(
        "triogate", description="realm in the WWW-Authenticate challenge", validator=fields.realm)

    def __attrs_post_init__(self) -> None:
        if self.discovery:
            if not self.issuer:
                raise ValueError("discovery: needs issuer (the discovery document is {issuer}/.well-known/openid-configuration)")
            if not fields.is_http_url(self.issuer):
                raise ValueError(f"issuer: expected an http(s) URL for discovery, got {self.issuer!r}")
            if self.jwks_uri:
                raise ValueError("discovery: set either jwks_uri or discovery = true, not both")
        if self.anonymous is not None and not self.anonymous:
            raise ValueError("anonymous: expected a consumer name")
