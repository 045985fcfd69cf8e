"""The OpenID provider as the gateway sees it: its metadata, its token endpoint and its ID tokens.

Metadata and signing keys come from a shared :class:`triogate.jwks.JWKSSource` (discovery,
cached keys, rate-limited refresh on an unknown ``kid``); token requests go through the
gateway's HTTP client. ID tokens are checked as OIDC Core §3.1.3.7 says: the signature with a
key of the provider's JWK Set (never an HMAC with a guessable secret, never ``none``), ``iss``,
``aud`` containing the client id (and ``azp`` equal to it when present), ``exp``/``iat`` with
leeway, and the ``nonce`` of the login.
"""

from __future__ import annotations

import base64
import hmac
import logging
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import triogate
from triogate.jwks import SUPPORTED_ALGORITHMS, JWKSSource

from .config import OidcConfig

__all__ = ["LoginRejected", "Provider", "ProviderError"]

log = logging.getLogger("triogate.oidc")
ASYMMETRIC = frozenset(a for a in SUPPORTED_ALGORITHMS if not a.startswith("HS"))
MAX_TOKEN_RESPONSE = 1 << 18


class ProviderError(Exception):
    """The provider could not be reached or answered nonsense: the gateway's problem (502/503), not the user's."""


class LoginRejected(Exception):
    """The provider refused a code or refresh token, or an ID token is invalid (``reason`` is safe to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Provider:
    def __init__(self, config: OidcConfig, http: triogate.HTTPClient, source: JWKSSource) -> None:
        self.config = config
        self.http = http
        self.source = source

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched now if the background refresher has not managed yet)."""
        if self.source.metadata is None:
            await self.source.refresh_if_allowed()
        md = self.source.metadata
        if md is None:
            raise ProviderError(f"no metadata from {self.config.issuer} yet (discovery failed)")
        return md

    async def endpoint(self, name: str) -> str:
        url = (await self.metadata()).get(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ProviderError(f"the provider's metadata has no usable {name}")
        return url

    # ------------------------------------------------------------------ the token endpoint

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        c = self.config
        url = await self.endpoint("token_endpoint")
        headers = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")]
        if c.token_auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: id and secret form-encoded before the Basic encoding
            pair = f"{quote(c.client_id, safe='')}:{quote(c.client_secret or '', safe='')}"
            headers.append(("authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
        else:
            form = {**form, "client_id": c.client_id}
            if c.token_auth_method == "client_secret_post":
                form["client_secret"] = c.client_secret or ""
        try:
            resp = await self.http.fetch("POST", url, headers=headers, body=urlencode(form).encode(),
                                         timeout=c.http_timeout, limit=MAX_TOKEN_RESPONSE)
        except (triogate.GatewayError, triogate.UpstreamError, triogate.UpstreamTimeout, triogate.BodyTooLarge,
                OSError, ValueError) as exc:
            raise ProviderError(f"POST {url}: {type(exc).__name__}") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status == 200 and isinstance(data, dict):
            if not isinstance(data.get("access_token"), str):
                raise ProviderError(f"POST {url}: no access_token in the answer")
            return data
        error = data.get("error") if isinstance(data, dict) else None
        if resp.status == 400 and error == "invalid_grant":
            raise LoginRejected("invalid_grant")
        raise ProviderError(f"POST {url}: status {resp.status}" + (f", error {error!r}" if isinstance(error, str) else ""))

    async def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Tokens for an authorization code (RFC 6749 §4.1.3 with the PKCE verifier, RFC 7636 §4.5)."""
        return await self._token_request({"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": redirect_uri, "code_verifier": verifier})

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    # ------------------------------------------------------------------ ID tokens

    async def verify_id_token(self, token: str, *, nonce: str | None, subject: str | None = None) -> dict[str, Any]:
        """The claims of a valid ID token; :class:`LoginRejected` otherwise (:class:`ProviderError`
        while the provider's keys could not be fetched at all).

        ``nonce``: the login's (required and compared); ``subject``: the session's, for ID
        tokens that come with a refresh (OIDC Core §12.2: same ``iss`` and ``sub``).
        """
        c = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise LoginRejected("id_token_malformed") from None
        alg = header.get("alg")
        md = self.source.metadata or {}
        advertised = md.get("id_token_signing_alg_values_supported") or ["RS256"]
        if not isinstance(alg, str) or alg not in ASYMMETRIC or alg not in advertised:
            raise LoginRejected("id_token_algorithm")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise LoginRejected("id_token_malformed")
        src = self.source
        if src.loaded_at is None or (kid is not None and not src.ring.has_kid(kid)):
            await src.refresh_if_allowed()
        if src.loaded_at is None:  # the provider's keys were never fetched: its outage, not a bad token
            raise ProviderError(f"no signing keys from {c.issuer} yet")
        candidates = src.ring.candidates(kid, alg)
        if not candidates:
            raise LoginRejected("id_token_unknown_key")
        options: dict[str, Any] = {"require": ["iss", "sub", "aud", "exp", "iat"]}
        for key in candidates:
            try:
                claims = jwt.decode(token, key.key, algorithms=[alg], audience=c.client_id, issuer=c.issuer,
                                    leeway=c.leeway, options=options)  # type: ignore[arg-type]
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidAudienceError:
                raise LoginRejected("id_token_audience") from None
            except jwt.InvalidIssuerError:
                raise LoginRejected("id_token_issuer") from None
            except jwt.ExpiredSignatureError:
                raise LoginRejected("id_token_expired") from None
            except jwt.PyJWTError:
                raise LoginRejected("id_token_invalid") from None
            break
        else:
            raise LoginRejected("id_token_signature")
        aud = claims.get("aud")
        azp = claims.get("azp")
        if (azp is not None and azp != c.client_id) or (isinstance(aud, list) and len(aud) > 1 and azp is None):
            raise LoginRejected("id_token_azp")
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
                raise LoginRejected("id_token_nonce")
        if subject is not None and claims.get("sub") != subject:
            raise LoginRejected("id_token_subject")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LoginRejected("id_token_invalid")
        return claims
