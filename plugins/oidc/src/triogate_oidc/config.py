"""Settings of the oidc plugin: the table under [routes.<r>.plugins.oidc] (or [plugins.oidc])."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs
import triogate
from triogate import fields
from triogate_redis import RedisConfig

from .cipher import key_problem

__all__ = ["OidcConfig"]

_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # RFC 6265 cookie-name (a token)


_optional_origin = fields.Check(lambda inst, name, value: () if value is None else fields.origin_url.find(inst, name, value),
                                schema=fields.origin_url.schema)


def _cookie_keys(inst: Any, name: str, value: list[str]) -> list[tuple[str, str]]:
    if not value:
        return [(name, ('expected at least one key (generate one: python -c "import secrets; '
                        'print(secrets.token_urlsafe(32))")'))]
    out = []
    for i, key in enumerate(value):
        problem = key_problem(key)
        if problem:
            out.append((f"{name}[{i}]", problem))
    if len(set(value)) != len(value):
        out.append((name, "the same key is listed twice"))
    return out


def _cookie_name(inst: Any, name: str, value: str) -> list[tuple[str, str]]:
    if not _COOKIE_NAME.fullmatch(value):
        return [(name, f"expected a cookie name (letters, digits, - and _), got {value!r}")]
    return []


def _local_path(inst: Any, name: str, value: str | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not value.startswith("/") or value.startswith("//") or "\\" in value or "?" in value or "#" in value:
        return [(name, f"expected a path starting with / (no query), got {value!r}")]
    return []


@attrs.define(frozen=True)
class OidcConfig:
    """An OpenID Connect relying party: the provider, the client, the session cookie, the paths it answers."""

    # ---- the provider and the client
    issuer: str = triogate.setting(
        description="the provider's issuer URL; its metadata comes from {issuer}/.well-known/openid-configuration",
        validator=fields.http_url)
    client_id: str = triogate.setting(description="the client id registered at the provider (also the ID token's aud)")
    cookie_keys: list[str] = triogate.setting(
        description="AES-256-GCM keys sealing the cookies, each 32 random bytes in base64url (use ${ENV}); the first seals, all open (rotation)",
        validator=fields.Check(_cookie_keys), secret=True)
    client_secret: str | None = triogate.setting(
        None, description="the client secret (use ${ENV}); none for a public client (PKCE only)", secret=True)
    token_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = triogate.setting(
        "client_secret_basic", description="how the gateway authenticates at the token endpoint")
    scopes: list[str] = triogate.setting(
        factory=lambda: ["openid", "profile", "email"],
        description='scopes asked for at login; must contain "openid" (add "offline_access" for refresh tokens at some providers)')
    extra_auth_params: dict[str, str] = triogate.setting(
        factory=dict, description="more query parameters for the authorization request (e.g. prompt, audience, acr_values)")
    # ---- paths on the route (full request paths, as the browser sees them)
    redirect_path: str = triogate.setting(
        "/oauth2/callback", description="path the provider redirects back to (register {base_url}{redirect_path} as redirect URI)",
        validator=fields.Check(_local_path))
    login_path: str = triogate.setting(
        "/oauth2/login", description="path that starts a login; ?rd=/relative/path says where to go after it",
        validator=fields.Check(_local_path))
    logout_path: str = triogate.setting(
        "/oauth2/logout", description="path that ends the session (RP-initiated logout at the provider when it has an end_session_endpoint)",
        validator=fields.Check(_local_path))
    post_logout_redirect_uri: str | None = triogate.setting(
        None, description="absolute URL the provider sends the browser to after logout (register it at the provider)",
        validator=fields.http_url)
    logout_redirect: str = triogate.setting(
        "/", description="where logout ends when the provider has no end_session_endpoint (a path or URL you trust)")
    base_url: str | None = triogate.setting(
        None, description="the app's external origin, e.g. https://app.example.com; default: the request's scheme and Host",
        validator=_optional_origin)
    # ---- the session cookie
    cookie_name: str = triogate.setting(
        "triogate_session", description="session cookie name (chunks: <name>_0, <name>_1, ...; logins in progress: <name>_login_*)",
        validator=fields.Check(_cookie_name))
    cookie_secure: bool = triogate.setting(True, description="send the cookies with Secure (HTTPS only); false only for plain-HTTP development")
    cookie_domain: str | None = triogate.setting(None, description="Domain attribute of the cookies; default: host-only")
    cookie_path: str = triogate.setting("/", description="Path attribute of the session cookie", validator=fields.path)
    cookie_max_chunks: int = triogate.setting(
        5, description="most cookies one session may span (each under 4 KB); a larger session fails the login with a clear error",
        validator=fields.at_least(1))
    session_store: Literal["cookie", "redis"] = triogate.setting(
        "cookie", description="where sessions live: in the cookie (sealed, chunked) or in Redis (the cookie holds only the sealed id)")
    redis: RedisConfig = triogate.setting(factory=RedisConfig, description='Redis connection (session_store = "redis")')
    session_lifetime: float = triogate.setting(
        8 * 3600.0, description="seconds a session lasts at most after login, refreshes included", validator=fields.duration)
    login_timeout: float = triogate.setting(
        600.0, description="seconds a started login may take before its callback is refused", validator=fields.duration)
    # ---- tokens
    leeway: float = triogate.setting(
        30.0, description="seconds of clock skew allowed for the ID token's exp and iat", validator=fields.duration_or_zero)
    refresh_margin: float = triogate.setting(
        60.0, description="refresh the access token this many seconds before it expires (with a refresh token)",
        validator=fields.duration_or_zero)
    http_timeout: float = triogate.setting(
        10.0, description="seconds a discovery, JWKS or token request to the provider may take", validator=fields.duration)
    jwks_ttl: float = triogate.setting(
        300.0, description="seconds the provider's keys are fresh (refreshed in the background); its metadata is read once per loaded config", validator=fields.duration)
    jwks_refresh_min_interval: float = triogate.setting(
        30.0, description="least seconds between two key fetches triggered by an unknown kid", validator=fields.duration_or_zero)
    # ---- identity for the upstream
    claims_to_headers: dict[str, str] = triogate.setting(
        factory=dict, description="ID token claim (dotted path) -> upstream header; client-sent copies are always dropped",
        validator=fields.header_name_values)
    pass_access_token: bool = triogate.setting(
        False, description="send the access token to the upstream as Authorization: Bearer")
    consumer_claim: str = triogate.setting(
        "sub", description='claim matched against [consumers.*.credentials.oidc] subject; "" disables consumer mapping')
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id (client copies are always dropped)")
    realm: str = triogate.setting(
        "triogate", description="realm of the challenge in the 401 of requests that are not browser navigations",
        validator=fields.realm)

    def __attrs_post_init__(self) -> None:
        if "openid" not in self.scopes:
            raise ValueError('scopes: must contain "openid"')
        if self.token_auth_method != "none" and not self.client_secret:
            raise ValueError(f"client_secret: needed with token_auth_method = {self.token_auth_method!r} "
                             '(or token_auth_method = "none" for a public client)')
        prefix = self.cookie_name.lower()
        if prefix.startswith("__host-") and (not self.cookie_secure or self.cookie_domain or self.cookie_path != "/"):
            raise ValueError("cookie_name: a __Host- cookie needs cookie_secure = true, no cookie_domain and "
                             'cookie_path = "/" (browsers drop it otherwise)')
        if prefix.startswith("__secure-") and not self.cookie_secure:
            raise ValueError("cookie_name: a __Secure- cookie needs cookie_secure = true (browsers drop it otherwise)")
        paths = [self.redirect_path, self.login_path, self.logout_path]
        if len(set(paths)) != 3:
            raise ValueError("redirect_path, login_path, logout_path: each needs its own path")
        reserved = {"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
                    "code_challenge_method"}
        clash = sorted(reserved & set(self.extra_auth_params))
        if clash:
            raise ValueError(f"extra_auth_params.{clash[0]}: set by the plugin itself")
