"""Settings of the oauth2-introspection plugin."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

import attrs
import triogate

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@attrs.define(frozen=True)
class IntrospectionConfig:
    introspection_url: str = triogate.setting(description="the authorization server's RFC 7662 introspection endpoint")
    client_id: str | None = triogate.setting(None, description="client id the gateway authenticates with")
    client_secret: str | None = triogate.setting(None, description="its secret (use ${ENV})")
    auth_method: Literal["client_secret_basic", "client_secret_post"] = triogate.setting(
        "client_secret_basic", description="how the client authenticates to the endpoint (RFC 6749 §2.3.1)")
    token_type_hint: str | None = triogate.setting("access_token", description="token_type_hint sent along; unset sends none")
    timeout: float = triogate.setting(
        3.0, description="seconds an introspection may take; beyond it the request fails closed with 503")
    cache_ttl: float = triogate.setting(
        60.0, description="seconds an active result is reused (never past the token's exp); 0 disables")
    negative_cache_ttl: float = triogate.setting(5.0, description="seconds an inactive result is reused; 0 disables")
    cache_size: int = triogate.setting(10000, description="most cached results (least recently used are dropped)")
    scopes: list[str] = triogate.setting(factory=list, description="scopes the token must all have; 403 otherwise")
    audience: list[str] = triogate.setting(
        factory=list, description="accepted aud values (the token's aud, string or list, must contain one); empty: no check")
    client_ids: list[str] = triogate.setting(
        factory=list, description="accepted client_id values (the client the token was issued to); empty: any")
    issuer: str | None = triogate.setting(None, description="required iss, when the server returns one")
    header_names: list[str] = triogate.setting(
        factory=lambda: ["authorization"], description='headers searched first ("authorization" expects "Bearer <token>")')
    cookie_names: list[str] = triogate.setting(factory=list, description="cookies searched next")
    query_params: list[str] = triogate.setting(factory=list, description="query parameters searched last")
    strip_credential: bool = triogate.setting(True, description="remove the token from the request before forwarding")
    max_token_bytes: int = triogate.setting(4096, description="longer tokens are rejected without a lookup")
    forward_headers: dict[str, str] = triogate.setting(
        factory=dict, description="introspection field (sub, client_id, scope, username, ...) -> upstream header; client-sent copies are dropped")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no token is presented (instead of 401); must exist in [consumers]")
    realm: str = triogate.setting("triogate", description="realm in the WWW-Authenticate challenge")

    def __attrs_post_init__(self) -> None:
        u = urlsplit(self.introspection_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"introspection_url: expected an http(s) URL, got {self.introspection_url!r}")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id, client_secret: set both or neither")
        if self.timeout <= 0:
            raise ValueError("timeout: expected a positive number of seconds")
        if self.cache_ttl < 0 or self.negative_cache_ttl < 0:
            raise ValueError("cache_ttl, negative_cache_ttl: expected 0 or more seconds")
        if self.cache_size < 1:
            raise ValueError("cache_size: expected at least 1")
        if not (self.header_names or self.cookie_names or self.query_params):
            raise ValueError("header_names, cookie_names, query_params: at least one place to look for the token")
        for what, names in (("header_names", self.header_names), ("forward_headers", list(self.forward_headers.values()))):
            for n in names:
                if not _HEADER_NAME.fullmatch(n):
                    raise ValueError(f"{what}: expected a header name, got {n!r}")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm: must not contain quotes or backslashes")
