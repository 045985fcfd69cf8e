"""A real identity provider on loopback for auth-plugin tests: JWKS, OIDC discovery and
RFC 7662 introspection. It signs with PyJWT and cryptography, which the core does not
need: install them with ``pip install 'triogate[testing-idp]'``."""

from __future__ import annotations

import base64
import collections
import os
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

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
      ``introspection_endpoint``); ``issuer`` is ``idp.issuer`` (the server's URL).
    - ``GET /jwks``: the JWK Set of the *published* keys (``idp.jwks_uri``).
    - ``POST /introspect``: RFC 7662 introspection (``idp.introspection_url``) of opaque tokens
      made with :meth:`issue_opaque`; clients authenticate with ``client_secret_basic`` or
      ``client_secret_post`` as ``idp.client_id`` / ``idp.client_secret``; a wrong client gets 401.

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
    - ``idp.calls`` counts requests per endpoint: ``"jwks"``, ``"discovery"``, ``"introspect"``;
      ``idp.introspections`` records each introspection form (dict) with the ``auth`` method used.
    """

    def __init__(self, *, client_id: str = "gateway", client_secret: str = "gateway-secret") -> None:
        self.server = UpstreamServer(self._handle, name="idp")
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

    # ------------------------------------------------------------------ serving

    async def _handle(self, req: Request) -> Response:
        name = {"/jwks": "jwks", "/.well-known/openid-configuration": "discovery",
                "/introspect": "introspect"}.get(req.path, "other")
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
            return Response.json({"issuer": self.issuer, "jwks_uri": self.jwks_uri,
                                  "introspection_endpoint": self.introspection_url,
                                  "id_token_signing_alg_values_supported": ["RS256"]})
        if name == "introspect" and req.method == "POST":
            form = dict(parse_qsl((await req.body.read(1 << 16)).decode(), keep_blank_values=True))
            auth = req.headers.get("authorization") or ""
            method, cid, secret = "none", None, None
            if auth.lower().startswith("basic "):
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                method, cid, secret = "client_secret_basic", unquote(user), unquote(pw)
            elif "client_id" in form:
                method, cid, secret = "client_secret_post", form.get("client_id"), form.get("client_secret")
            self.introspections.append({**form, "auth": method})
            if cid != self.client_id or secret != self.client_secret:
                return Response.json({"error": "invalid_client"}, status=401,
                                     headers=[("www-authenticate", 'Basic realm="idp"')])
            data = self.opaque.get(form.get("token", ""), {"active": False})
            return Response.json(data)
        return Response.json({"error": "not_found"}, status=404)

