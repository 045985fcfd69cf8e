"""A real identity provider on loopback for auth-plugin tests: JWKS, OIDC discovery,
RFC 7662 introspection and the OpenID Connect authorization-code flow (authorize with PKCE,
token with code and refresh grants, end-session). It signs with PyJWT and cryptography, which the core does not
need: install them with ``pip install 'triogate[testing-idp]'``."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import os
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import trio

from ..devserver import ResetConnection, UpstreamServer
from ..messages import Request, Response

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from jwt import algorithms as jwa
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        f"triogate.testing.IdentityProvider needs PyJWT and cryptography ({exc}): "
        "pip install 'triogate[testing-idp]'", name=exc.name) from exc

__all__ = ["IdPKey", "IdentityProvider"]

_KEY_POOL: dict[tuple[str, int], Any] = {}


def _private_key(family: str, index: int) -> Any:
    """Generated private keys, cached per process (RSA generation is slow)."""
    key = _KEY_POOL.get((family, index))
    if key is None:
        if family == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif family in ("P-256", "P-384", "P-521", "secp256k1"):
            curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1,
                     "secp256k1": ec.SECP256K1}[family]
            key = ec.generate_private_key(curve())
        elif family == "Ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        elif family == "Ed448":
            key = ed448.Ed448PrivateKey.generate()
        elif family == "oct":
            key = os.urandom(64)
        else:
            raise ValueError(f"unknown key family {family!r}")
        _KEY_POOL[(family, index)] = key
    return key


def _family_for(alg: str, curve: str | None = None) -> str:
    if alg.startswith("HS"):
        return "oct"
    if alg.startswith(("RS", "PS")):
        return "RSA"
    if alg == "ES256K":
        return "secp256k1"
    if alg.startswith("ES"):
        return {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    if alg == "EdDSA":
        return curve or "Ed25519"
    raise ValueError(f"unsupported algorithm {alg!r}")


class IdPKey:
    """One signing key of an :class:`IdentityProvider`: ``kid``, ``alg``, the private key and its public JWK."""

    def __init__(self, kid: str, alg: str, private: Any) -> None:
        self.kid = kid
        self.alg = alg
        self.private = private

    @property
    def public(self) -> Any:
        return self.private if isinstance(self.private, bytes) else self.private.public_key()

    @property
    def secret(self) -> bytes:
        """The HMAC secret (HS* keys only)."""
        if not isinstance(self.private, bytes):
            raise TypeError(f"{self.kid} is not an HMAC key")
        return self.private

    def public_pem(self) -> str:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.private, bytes):
            data = jwa.HMACAlgorithm.to_jwk(self.private, as_dict=True)
        elif self.alg.startswith(("RS", "PS")):
            data = jwa.RSAAlgorithm.to_jwk(self.public, as_dict=True)
        elif self.alg.startswith("ES"):
            data = jwa.ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            data = jwa.OKPAlgorithm.to_jwk(self.public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


class IdentityProvider:
    """A real identity provider on loopback for auth-plugin tests (fixture ``identity_provider``).

    It serves, over HTTP on 127.0.0.1 (built on :class:`UpstreamServer`):

    - ``GET /.well-known/openid-configuration``: OIDC discovery (``issuer``, ``jwks_uri``,
      ``introspection_endpoint``, ``authorization_endpoint``, ``token_endpoint``,
      ``end_session_endpoint``); ``issuer`` is ``idp.issuer`` (the server's URL).
    - ``GET /jwks``: the JWK Set of the *published* keys (``idp.jwks_uri``).
    - ``POST /introspect``: RFC 7662 introspection (``idp.introspection_url``) of opaque tokens
      made with :meth:`issue_opaque`; clients authenticate with ``client_secret_basic`` or
      ``client_secret_post`` as ``idp.client_id`` / ``idp.client_secret``; a wrong client gets 401.
    - ``GET /authorize`` (``idp.authorization_endpoint``): the login page of a browser flow, which
      approves at once: it checks ``client_id``, ``response_type=code`` and ``redirect_uri``
      (against ``idp.redirect_uris`` when that is not None), remembers ``nonce``, ``scope`` and the
      PKCE ``code_challenge`` (S256 only) and redirects to ``redirect_uri?code=...&state=...`` for
      the user ``idp.user`` (a dict of claims, ``sub`` included). ``idp.authorize_error =
      "access_denied"`` redirects back with that error instead.
    - ``POST /token`` (``idp.token_endpoint``), client authenticated as for introspection:
      ``grant_type=authorization_code`` (the code is single use: a second use is ``invalid_grant``
      and revokes the refresh token the first one got; ``redirect_uri`` must match; the
      ``code_verifier`` must hash to the challenge, else ``invalid_grant``) and
      ``grant_type=refresh_token`` (``idp.rotate_refresh_tokens``: a new refresh token each time,
      the old one revoked); ``grant_type=client_credentials`` gives an access token whose ``sub``
      is the client id (API clients in demos). Answers carry an ``id_token`` (``iss``, ``sub``, ``aud`` = client id,
      ``nonce`` of the login, ``exp`` = now + ``idp.id_token_ttl``, claims of ``idp.user``, then
      ``idp.id_token_overrides`` applied: ``{"aud": "other"}`` makes a bad token), an
      ``access_token`` (a JWT signed like the rest, ``exp`` = now + ``idp.access_token_ttl``),
      ``expires_in`` and a ``refresh_token`` (unless ``idp.issue_refresh_tokens`` is False).
      ``idp.token_requests`` records each form (secrets removed); ``idp.revoke_refresh_tokens()``
      makes every refresh fail.
    - ``GET /logout`` (``idp.end_session_endpoint``): RP-initiated logout; ``idp.end_sessions``
      records the query; redirects to ``post_logout_redirect_uri`` (with ``state``) when given.

    Keys:

    - ``kid = idp.add_key("RS256")`` for any of HS256/384/512, RS256/384/512, PS256/384/512,
      ES256/384/512, ES256K, EdDSA (``curve="Ed448"`` for Ed448). HMAC keys are not published
      unless ``publish=True``; ``idp.keys[kid]`` is an :class:`IdPKey` (``.secret``, ``.public_pem()``).
    - ``idp.mint(kid=None, **claims)``: a signed JWT with defaults ``iss=idp.issuer``, ``sub="user-1"``,
      ``iat=now``, ``exp=now+300`` (pass ``exp=None`` to omit a claim); ``headers=`` adds JOSE header
      fields, ``include_kid=False`` omits ``kid``; ``alg=`` overrides the header algorithm.
    - ``idp.rotate(alg)``: publish a new key and unpublish every older one; returns the new kid.
    - ``idp.unpublish(kid)`` / ``idp.publish(kid)``.

    Faults and counters:

    - ``idp.outage = "error"`` (503 answers), ``"hang"`` (never answers), ``"reset"`` (connection reset)
      or ``None`` (healthy) — applies to every endpoint; ``idp.delay`` seconds are slept before answering.
    - ``idp.calls`` counts requests per endpoint: ``"jwks"``, ``"discovery"``, ``"introspect"``,
      ``"authorize"``, ``"token"``, ``"end_session"``;
      ``idp.introspections`` records each introspection form (dict) with the ``auth`` method used.
    """

    def __init__(self, *, client_id: str = "gateway", client_secret: str = "gateway-secret",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = UpstreamServer(self._handle, name="idp", host=host, port=port)
        self.keys: dict[str, IdPKey] = {}
        self.published: list[str] = []
        self.client_id = client_id
        self.client_secret = client_secret
        self.calls: collections.Counter[str] = collections.Counter()
        self.introspections: list[dict[str, str]] = []
        self.opaque: dict[str, dict[str, Any]] = {}
        self.outage: str | None = None
        self.delay = 0.0
        self._counter = 0
        self._pool_index: dict[str, int] = {}
        # the browser flow
        self.user: dict[str, Any] = {"sub": "user-1", "name": "Test User", "email": "user-1@example.test"}
        self.redirect_uris: list[str] | None = None
        self.authorize_error: str | None = None
        self.id_token_ttl = 300
        self.access_token_ttl = 300
        self.issue_refresh_tokens = True
        self.rotate_refresh_tokens = True
        self.id_token_overrides: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.used_codes: dict[str, str | None] = {}  # code -> the refresh token it got
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.end_sessions: list[dict[str, str]] = []

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def issuer(self) -> str:
        return self.server.url

    @property
    def jwks_uri(self) -> str:
        return self.server.url + "/jwks"

    @property
    def discovery_url(self) -> str:
        return self.server.url + "/.well-known/openid-configuration"

    @property
    def introspection_url(self) -> str:
        return self.server.url + "/introspect"

    @property
    def authorization_endpoint(self) -> str:
        return self.server.url + "/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.server.url + "/token"

    @property
    def end_session_endpoint(self) -> str:
        return self.server.url + "/logout"

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "issuer": self.issuer, "jwks_uri": self.jwks_uri, "introspection_endpoint": self.introspection_url,
            "authorization_endpoint": self.authorization_endpoint, "token_endpoint": self.token_endpoint,
            "end_session_endpoint": self.end_session_endpoint, "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"], "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    async def start(self, nursery: trio.Nursery) -> IdentityProvider:
        await nursery.start(self.server.run)
        return self

    # ------------------------------------------------------------------ keys and tokens

    def add_key(self, alg: str = "RS256", *, kid: str | None = None, publish: bool | None = None,
                curve: str | None = None) -> str:
        family = _family_for(alg, curve)
        index = self._pool_index.get(family, 0)
        self._pool_index[family] = index + 1
        private = _private_key(family, index)
        self._counter += 1
        kid = kid or f"{alg.lower()}-{self._counter}"
        self.keys[kid] = IdPKey(kid, alg, private)
        if publish if publish is not None else not alg.startswith("HS"):
            self.published.append(kid)
        return kid

    def publish(self, kid: str) -> None:
        if kid not in self.published:
            self.published.append(kid)

    def unpublish(self, kid: str) -> None:
        if kid in self.published:
            self.published.remove(kid)

    def rotate(self, alg: str = "RS256") -> str:
        """Publish a new key and stop publishing every older one; returns the new kid."""
        kid = self.add_key(alg, publish=False)
        self.published[:] = [kid]
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.keys[k].jwk() for k in self.published]}

    def mint(self, kid: str | None = None, *, alg: str | None = None, headers: dict[str, Any] | None = None,
             include_kid: bool = True, key: Any = None, **claims: Any) -> str:
        """A signed JWT; ``kid`` defaults to the newest key (one is added if there is none)."""
        if kid is None:
            kid = self.published[-1] if self.published else (next(reversed(self.keys)) if self.keys else self.add_key())
        k = self.keys[kid]
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "sub": "user-1", "iat": now, "exp": now + 300}
        payload.update(claims)
        payload = {n: v for n, v in payload.items() if v is not None}
        hdrs = dict(headers or {})
        if include_kid:
            hdrs.setdefault("kid", kid)
        return jwt.encode(payload, key if key is not None else k.private, algorithm=alg or k.alg, headers=hdrs)

    def issue_opaque(self, *, active: bool = True, **fields: Any) -> str:
        """An opaque token the introspection endpoint knows; ``fields`` become its introspection response."""
        token = secrets.token_urlsafe(24)
        now = int(time.time())
        data: dict[str, Any] = {"active": active}
        if active:
            data.update({"sub": "user-1", "client_id": "app-1", "scope": "read", "exp": now + 300, "iat": now,
                         "token_type": "Bearer"})
        data.update(fields)
        self.opaque[token] = {n: v for n, v in data.items() if v is not None}
        return token

    def revoke(self, token: str) -> None:
        self.opaque[token] = {"active": False}

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far stops working (the user was logged out at the provider)."""
        self.refresh_tokens.clear()

    # ------------------------------------------------------------------ the browser flow

    def _client(self, req: Request, form: dict[str, str]) -> tuple[str, str | None, str | None]:
        """(auth method, client id, secret) of a token or introspection request."""
        auth = req.headers.get("authorization") or ""
        if auth.lower().startswith("basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            return "client_secret_basic", unquote(user), unquote(pw)
        if "client_id" in form:
            return "client_secret_post", form.get("client_id"), form.get("client_secret")
        return "none", None, None

    def _authorize(self, req: Request) -> Response:
        q = dict(parse_qsl(req.query, keep_blank_values=True))
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect_uri.startswith(("http://", "https://")) or (
                self.redirect_uris is not None and redirect_uri not in self.redirect_uris):
            return Response.text("unknown client or redirect_uri", status=400)  # never redirect to an unknown URI
        back: dict[str, str] = {}
        if self.authorize_error is not None:
            back["error"] = self.authorize_error
        elif (q.get("response_type") != "code" or "openid" not in q.get("scope", "").split()
              or ("code_challenge" in q and q.get("code_challenge_method") != "S256")):
            back["error"] = "invalid_request"
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = {"redirect_uri": redirect_uri, "nonce": q.get("nonce"), "scope": q.get("scope"),
                                "challenge": q.get("code_challenge"), "user": dict(self.user),
                                "expires": time.time() + 60}
            back["code"] = code
        if "state" in q:
            back["state"] = q["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return Response(302, [("location", redirect_uri + sep + urlencode(back)), ("content-length", "0")])

    def _tokens(self, user: dict[str, Any], scope: str | None, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        id_claims: dict[str, Any] = {**user, "aud": self.client_id, "iat": now, "exp": now + self.id_token_ttl,
                                     "auth_time": now, "nonce": nonce}
        id_claims.update(self.id_token_overrides)
        answer: dict[str, Any] = {
            "token_type": "Bearer", "expires_in": self.access_token_ttl, "scope": scope or "openid",
            "id_token": self.mint(**id_claims),
            "access_token": self.mint(sub=user.get("sub"), exp=now + self.access_token_ttl, scope=scope,
                                      client_id=self.client_id, jti=secrets.token_urlsafe(8)),
        }
        if self.issue_refresh_tokens:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = {"user": user, "scope": scope}
            answer["refresh_token"] = refresh
        return answer

    def _token(self, form: dict[str, str]) -> Response:
        def invalid_grant(why: str) -> Response:
            return Response.json({"error": "invalid_grant", "error_description": why}, status=400)

        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = form.get("code", "")
            if code in self.used_codes:  # RFC 6749 §4.1.2: a reused code revokes what it got
                self.refresh_tokens.pop(self.used_codes[code] or "", None)
                return invalid_grant("code already used")
            data = self.codes.pop(code, None)
            if data is None or data["expires"] < time.time():
                return invalid_grant("unknown or expired code")
            self.used_codes[code] = None
            if form.get("redirect_uri") != data["redirect_uri"]:
                return invalid_grant("redirect_uri does not match")
            if data["challenge"] is not None:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if not verifier or not hmac.compare_digest(digest, data["challenge"]):
                    return invalid_grant("PKCE verification failed")
            answer = self._tokens(data["user"], data["scope"], data["nonce"])
            self.used_codes[code] = answer.get("refresh_token")
            return Response.json(answer, headers=[("cache-control", "no-store")])
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            data = self.refresh_tokens.get(refresh)
            if data is None:
                return invalid_grant("unknown or revoked refresh token")
            answer = self._tokens(data["user"], data["scope"], None)
            if self.rotate_refresh_tokens:
                del self.refresh_tokens[refresh]
            else:
                self.refresh_tokens.pop(answer.pop("refresh_token", ""), None)
            return Response.json(answer, headers=[("cache-control", "no-store")])
        if grant == "client_credentials":  # a machine client: an access token for the client itself
            now = int(time.time())
            token = self.mint(sub=self.client_id, exp=now + self.access_token_ttl, scope=form.get("scope"),
                              client_id=self.client_id, jti=secrets.token_urlsafe(8))
            return Response.json({"token_type": "Bearer", "access_token": token, "expires_in": self.access_token_ttl},
                                 headers=[("cache-control", "no-store")])
        return Response.json({"error": "unsupported_grant_type"}, status=400)

    def _end_session(self, req: Request) -> Response:
        q = dict(parse_qsl(req.query, keep_blank_values=True))
        self.end_sessions.append(q)
        target = q.get("post_logout_redirect_uri")
        if target:
            if "state" in q:
                target += ("&" if "?" in target else "?") + urlencode({"state": q["state"]})
            return Response(302, [("location", target), ("content-length", "0")])
        return Response.text("signed out")

    # ------------------------------------------------------------------ serving

    async def _handle(self, req: Request) -> Response:
        name = {"/jwks": "jwks", "/.well-known/openid-configuration": "discovery", "/introspect": "introspect",
                "/authorize": "authorize", "/token": "token", "/logout": "end_session"}.get(req.path, "other")
        self.calls[name] += 1
        if self.delay:
            await trio.sleep(self.delay)
        if self.outage == "hang":
            await trio.sleep_forever()
        if self.outage == "reset":
            raise ResetConnection()
        if self.outage == "error":
            return Response.json({"error": "temporarily_unavailable"}, status=503)
        if name == "jwks" and req.method == "GET":
            return Response.json(self.jwks(), headers=[("cache-control", "max-age=60")])
        if name == "discovery" and req.method == "GET":
            return Response.json(self.metadata())
        if name == "authorize" and req.method == "GET":
            return self._authorize(req)
        if name == "end_session" and req.method == "GET":
            return self._end_session(req)
        if name in ("introspect", "token") and req.method == "POST":
            form = dict(parse_qsl((await req.body.read(1 << 16)).decode(), keep_blank_values=True))
            method, cid, secret = self._client(req, form)
            if name == "token":
                self.token_requests.append({**{k: v for k, v in form.items() if k != "client_secret"},
                                            "auth": method})
                if cid != self.client_id or secret != self.client_secret:
                    return Response.json({"error": "invalid_client"}, status=401,
                                         headers=[("www-authenticate", 'Basic realm="idp"')])
                return self._token(form)
            self.introspections.append({**form, "auth": method})
            if cid != self.client_id or secret != self.client_secret:
                return Response.json({"error": "invalid_client"}, status=401,
                                     headers=[("www-authenticate", 'Basic realm="idp"')])
            data = self.opaque.get(form.get("token", ""), {"active": False})
            return Response.json(data)
        return Response.json({"error": "not_found"}, status=404)

