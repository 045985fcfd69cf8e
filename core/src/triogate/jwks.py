"""Verification keys, JWK Sets and OpenID provider discovery, shared by every plugin that checks JWTs.

Public API (``from triogate.jwks import ...``), used by the jwt and oidc plugins: a plugin may not
import another plugin's private code, so the key machinery lives here once. PyJWT does the JOSE.

Keys and the algorithms each can verify: the key type decides, never the token. An RSA key
verifies RS*/PS* only, an EC key only the ES* of its curve, an Ed25519/Ed448 key only EdDSA,
an HMAC secret only the HS* its length allows. So a token whose header says HS256 can never be
checked against an RSA public key (the classic confusion attack), and ``none`` has no key at all.

A :class:`JWKSSource` is a JWK Set fetched over the gateway's HTTP client: TTL cache,
background refresh, rate-limited refresh on an unknown kid, and the last good keys kept while
the endpoint is down. With OIDC discovery the ``jwks_uri`` (and the rest of the provider's
metadata, :attr:`JWKSSource.metadata`) comes from ``{issuer}/.well-known/openid-configuration``,
whose ``issuer`` must equal the configured one (OIDC Discovery §4.3).
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import algorithms as jwa

from .messages import BodyTooLarge
from .problem import GatewayError
from .upstream import UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from .upstream import HTTPClient

__all__ = [
    "SUPPORTED_ALGORITHMS", "JWKSError", "JWKSSource", "KeyRing", "VerifyKey", "discovery_url", "fetch_json",
    "jwk_key", "pem_key", "running_source", "secret_key",
]

HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512", "secp256k1": "ES256K"}
SUPPORTED_ALGORITHMS = (*HMAC_MIN_BYTES, *sorted(RSA_ALGS), "ES256", "ES384", "ES512", "ES256K", "EdDSA")


@attrs.frozen
class VerifyKey:
    """One key: its ``kid`` (None for configured keys, which match any kid) and what it may verify."""

    kid: str | None
    algorithms: frozenset[str]
    key: Any = attrs.field(repr=False)
    origin: str = ""


def _algorithms_of(key: Any) -> frozenset[str]:
    if isinstance(key, bytes):
        return frozenset(a for a, n in HMAC_MIN_BYTES.items() if len(key) >= n)
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = EC_ALGS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return frozenset({"EdDSA"})
    return frozenset()


def _public(key: Any) -> Any:
    return key.public_key() if hasattr(key, "public_key") and hasattr(key, "private_bytes") else key


def secret_key(secret: str, is_base64: bool) -> VerifyKey:
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)) if is_base64 else secret.encode()
    if len(raw) < 32:
        raise ValueError(f"secret: expected at least 32 bytes (RFC 7518 §3.2), got {len(raw)}")
    return VerifyKey(None, _algorithms_of(raw), raw, "secret")


def pem_key(pem: str, index: int) -> VerifyKey:
    data = pem.strip().encode()
    try:
        if b"CERTIFICATE" in data.split(b"\n", 1)[0]:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ValueError(f"public_keys[{index}]: not a PEM public key or certificate ({exc})") from None
    algs = _algorithms_of(key)
    if not algs:
        raise ValueError(f"public_keys[{index}]: unsupported key type {type(key).__name__}")
    return VerifyKey(None, algs, key, f"public_keys[{index}]")


def jwk_key(jwk: dict[str, Any]) -> VerifyKey | None:
    """A key from one JWK, or None when it cannot verify signatures (encryption key, unknown type)."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    ops = jwk.get("key_ops")
    if ops is not None and "verify" not in ops:
        return None
    loader = {"oct": jwa.HMACAlgorithm, "RSA": jwa.RSAAlgorithm, "EC": jwa.ECAlgorithm,
              "OKP": jwa.OKPAlgorithm}.get(jwk.get("kty"))  # type: ignore[arg-type]
    if loader is None:
        return None
    try:
        key = _public(loader.from_jwk(jwk))
    except Exception:  # noqa: BLE001 - a malformed key is skipped, the rest of the set still works
        return None
    algs = _algorithms_of(key)
    alg = jwk.get("alg")
    if alg is not None:
        algs = algs & {alg}
    kid = jwk.get("kid")
    if not algs or (kid is not None and not isinstance(kid, str)):
        return None
    return VerifyKey(kid, algs, key, "jwks")


class KeyRing:
    """Keys indexed by kid; configured keys (kid None) are candidates for every token."""

    def __init__(self, keys: list[VerifyKey]) -> None:
        self.keys = keys
        self.by_kid: dict[str, list[VerifyKey]] = {}
        self.unkeyed: list[VerifyKey] = []
        for k in keys:
            if k.kid is None:
                self.unkeyed.append(k)
            else:
                self.by_kid.setdefault(k.kid, []).append(k)

    def __len__(self) -> int:
        return len(self.keys)

    def has_kid(self, kid: str) -> bool:
        return kid in self.by_kid

    def candidates(self, kid: str | None, alg: str, limit: int = 8) -> list[VerifyKey]:
        pool = self.by_kid.get(kid, []) if kid is not None else [k for k in self.keys if k.kid is not None]
        return [k for k in (*pool, *self.unkeyed) if alg in k.algorithms][:limit]


# ---------------------------------------------------------------------- JWK Sets and discovery

log = logging.getLogger("triogate.jwks")
MAX_DOCUMENT_BYTES = 1 << 20


class JWKSError(Exception):
    """A JWK Set or discovery document could not be fetched or used (the message is safe to log)."""


def discovery_url(issuer: str) -> str:
    """Where an OpenID provider publishes its metadata (OIDC Discovery §4)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


async def fetch_json(http: HTTPClient, url: str, *, timeout: float, limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """GET ``url`` over the gateway's HTTP client and parse the JSON of a 200 answer; :class:`JWKSError` otherwise."""
    try:
        resp = await http.fetch("GET", url, headers=[("accept", "application/json")], timeout=timeout, limit=limit)
    except (GatewayError, UpstreamError, UpstreamTimeout, BodyTooLarge, OSError, ValueError) as exc:
        raise JWKSError(f"GET {url}: {type(exc).__name__}: {exc}") from None
    if resp.status != 200:
        raise JWKSError(f"GET {url}: status {resp.status}")
    try:
        return resp.json()
    except ValueError:
        raise JWKSError(f"GET {url}: not JSON") from None


class JWKSSource:
    """The keys of one JWK Set (``ring``), kept fresh; with ``issuer`` set, found through discovery.

    ``metadata`` holds the provider's discovery document once it was fetched (None before, and
    always None with an explicit ``jwks_uri``): the oidc plugin reads its endpoints from there.
    """

    def __init__(
        self, http: HTTPClient, *, jwks_uri: str | None, issuer: str | None, ttl: float,
        min_interval: float, timeout: float,
    ) -> None:
        self.http = http
        self.jwks_uri = jwks_uri
        self.issuer = issuer  # set only with discovery
        self.ttl = ttl
        self.min_interval = min_interval
        self.timeout = timeout
        self.ring = KeyRing([])
        self.metadata: dict[str, Any] | None = None
        self.loaded_at: float | None = None
        self.last_attempt = -math.inf
        self.fetches = 0
        self.failures = 0
        self.started = False  # a background refresher runs
        self.generation = 0  # bumped whenever the key set changes
        self._doc_keys: Any = None
        self._inflight: trio.Event | None = None
        self._last_ok = False

    @property
    def label(self) -> str:
        return self.jwks_uri or f"discovery of {self.issuer}"

    def stale(self, now: float) -> bool:
        return self.loaded_at is None or now - self.loaded_at >= self.ttl

    # ------------------------------------------------------------------ fetching

    async def _get_json(self, url: str) -> Any:
        return await fetch_json(self.http, url, timeout=self.timeout)

    async def _discover(self) -> str:
        assert self.issuer is not None
        doc = await self._get_json(discovery_url(self.issuer))
        if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
            raise JWKSError("discovery document's issuer does not match the configured issuer")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            raise JWKSError("discovery document has no usable jwks_uri")
        self.metadata = doc
        return uri

    async def _load(self) -> None:
        if self.jwks_uri is None:
            self.jwks_uri = await self._discover()
        doc = await self._get_json(self.jwks_uri)
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise JWKSError(f"GET {self.jwks_uri}: not a JWK Set")
        keys = [k for k in (jwk_key(j) for j in doc["keys"]) if k is not None]
        skipped = len(doc["keys"]) - len(keys)
        if skipped:
            log.warning("jwks %s: %d key(s) skipped (not usable for signature verification)", self.jwks_uri, skipped)
        if doc["keys"] != self._doc_keys:
            self._doc_keys = doc["keys"]
            self.generation += 1  # verified-token caches drop what older keys vouched for
        self.ring = KeyRing(keys)
        self.loaded_at = trio.current_time()

    async def refresh(self) -> bool:
        """Fetch the keys now (concurrent callers share one fetch); False keeps the old keys."""
        if self._inflight is not None:
            await self._inflight.wait()
            return self._last_ok
        done = self._inflight = trio.Event()
        self.last_attempt = trio.current_time()
        self.fetches += 1
        ok = False
        try:
            await self._load()
            ok = True
        except JWKSError as exc:
            self.failures += 1
            log.warning("jwks refresh failed (%s); keeping %d known key(s)", exc, len(self.ring))
        finally:
            self._last_ok = ok
            self._inflight = None
            done.set()
        return ok

    async def refresh_if_allowed(self) -> bool:
        """Refresh for an unknown kid, at most once per ``min_interval`` (joins a running fetch)."""
        if self._inflight is None and trio.current_time() - self.last_attempt < self.min_interval:
            return False
        return await self.refresh()

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Background refresher: every ``ttl`` seconds, sooner again after a failure."""
        self.started = True
        task_status.started()
        try:
            while True:
                try:
                    ok = await self.refresh() if self.stale(trio.current_time()) else True
                except Exception:
                    log.exception("jwks refresh of %s crashed; keeping the known keys", self.label)
                    ok = False
                if ok and self.loaded_at is not None:
                    delay = max(self.loaded_at + self.ttl - trio.current_time(), 0.01)
                else:
                    delay = min(self.ttl, max(self.min_interval, 1.0))
                await trio.sleep(delay)
        finally:
            self.started = False


@asynccontextmanager
async def running_source(http: HTTPClient, **settings: Any) -> AsyncIterator[JWKSSource]:
    """A :class:`JWKSSource` whose background refresher runs until the block ends."""
    src = JWKSSource(http, **settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(src.run)
        yield src
        nursery.cancel_scope.cancel()
