"""Settings of the jwt plugin: the table under [plugins.jwt] or [routes.<r>.plugins.jwt]."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import attrs
import triogate

from .keys import SUPPORTED_ALGORITHMS

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SOURCES = ("header", "cookie", "query")


def _http_url(value: str | None, name: str) -> None:
    if value is None:
        return
    u = urlsplit(value)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"{name}: expected an http(s) URL, got {value!r}")


def check_header_names(names: list[str] | dict[str, str], what: str) -> None:
    for n in (names.values() if isinstance(names, dict) else names):
        if not _HEADER_NAME.fullmatch(n):
            raise ValueError(f"{what}: expected a header name, got {n!r}")


@attrs.define(frozen=True)
class JwtConfig:
    # ---- keys
    secret: str | None = triogate.setting(
        None, description="HMAC secret for HS256/384/512 tokens (use ${ENV}); at least 32 bytes")
    secret_is_base64: bool = triogate.setting(False, description="the secret is base64url-encoded bytes")
    public_keys: list[str] = triogate.setting(
        factory=list, description="PEM public keys or certificates; the key type decides the algorithms (RSA: RS*/PS*, EC: ES*, Ed25519/Ed448: EdDSA)")
    jwks_uri: str | None = triogate.setting(None, description="URL of a JWK Set to verify tokens with")
    issuer: str | None = triogate.setting(None, description="required iss claim (exact match)")
    discovery: bool = triogate.setting(
        False, description="find jwks_uri from {issuer}/.well-known/openid-configuration (OIDC discovery)")
    jwks_ttl: float = triogate.setting(300.0, description="seconds fetched keys are fresh; refreshed in the background this often")
    jwks_refresh_min_interval: float = triogate.setting(
        30.0, description="least seconds between two JWKS fetches triggered by an unknown kid (rate limit)")
    jwks_timeout: float = triogate.setting(5.0, description="seconds a JWKS or discovery fetch may take")
    algorithms: list[str] = triogate.setting(
        factory=list, description="accepted alg values; empty: every algorithm the configured keys can verify (never none)")
    # ---- claims
    audience: list[str] = triogate.setting(
        factory=list, description="accepted aud values: the token's aud (string or list) must contain one; empty: no check")
    required_claims: list[str] = triogate.setting(
        factory=lambda: ["exp"], description="claims every token must carry")
    leeway: float = triogate.setting(0.0, description="seconds of clock skew allowed for exp, nbf and iat")
    max_lifetime: float = triogate.setting(
        0.0, description="longest accepted token lifetime in seconds (exp - iat, or exp - now); 0: no limit")
    scopes: list[str] = triogate.setting(
        factory=list, description="scopes the token must all have (scope string or scp list); 403 otherwise")
    roles: list[str] = triogate.setting(
        factory=list, description="roles of which the token must have at least one; 403 otherwise")
    roles_claim: str = triogate.setting("roles", description="claim holding roles (dotted path, e.g. realm_access.roles)")
    verified_cache_size: int = triogate.setting(
        10000, description="verified tokens remembered (by SHA-256) until exp, at most 5 minutes, dropped when keys change; 0 disables")
    # ---- where the token is
    header_names: list[str] = triogate.setting(
        factory=lambda: ["authorization"], description='headers searched first ("authorization" expects "Bearer <token>")')
    cookie_names: list[str] = triogate.setting(factory=list, description="cookies searched next")
    query_params: list[str] = triogate.setting(factory=list, description="query parameters searched last")
    strip_credential: bool = triogate.setting(True, description="remove the token from the request before forwarding")
    max_token_bytes: int = triogate.setting(8192, description="longer tokens are rejected unparsed")
    # ---- identity
    claims_to_headers: dict[str, str] = triogate.setting(
        factory=dict, description="claim (dotted path) -> upstream header; client-sent copies of these headers are always dropped")
    consumer_claim: str = triogate.setting(
        "sub", description='claim matched against [consumers.*.credentials.jwt] subject; "" disables consumer mapping')
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no token is presented (instead of 401); must exist in [consumers]")
    realm: str = triogate.setting("triogate", description="realm in the WWW-Authenticate challenge")

    def __attrs_post_init__(self) -> None:
        _http_url(self.jwks_uri, "jwks_uri")
        if self.discovery:
            if not self.issuer:
                raise ValueError("discovery: needs issuer (the discovery document is {issuer}/.well-known/openid-configuration)")
            _http_url(self.issuer, "issuer")
            if self.jwks_uri:
                raise ValueError("discovery: set either jwks_uri or discovery = true, not both")
        if not (self.secret or self.public_keys or self.jwks_uri or self.discovery):
            raise ValueError("no keys: set secret, public_keys, jwks_uri, or issuer with discovery = true")
        for i, alg in enumerate(self.algorithms):
            if alg.lower() == "none":
                raise ValueError(f'algorithms[{i}]: "none" is never accepted')
            if alg not in SUPPORTED_ALGORITHMS:
                raise ValueError(f"algorithms[{i}]: unknown algorithm {alg!r} (supported: {', '.join(SUPPORTED_ALGORITHMS)})")
        for name in ("jwks_ttl", "jwks_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a positive number of seconds")
        for name in ("jwks_refresh_min_interval", "leeway", "max_lifetime"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected 0 or more seconds")
        if self.verified_cache_size < 0:
            raise ValueError("verified_cache_size: expected 0 or more")
        if self.max_token_bytes < 64:
            raise ValueError("max_token_bytes: expected at least 64")
        if not (self.header_names or self.cookie_names or self.query_params):
            raise ValueError("header_names, cookie_names, query_params: at least one place to look for the token")
        check_header_names(self.header_names, "header_names")
        check_header_names(self.claims_to_headers, "claims_to_headers")
        if self.anonymous is not None and not self.anonymous:
            raise ValueError("anonymous: expected a consumer name")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm: must not contain quotes or backslashes")
