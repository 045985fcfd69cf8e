"""Verification keys and the algorithms each can verify: the key type decides, never the token.

An RSA key verifies RS*/PS* only, an EC key only the ES* of its curve, an Ed25519/Ed448
key only EdDSA, an HMAC secret only the HS* its length allows. So a token whose header
says HS256 can never be checked against an RSA public key (the classic confusion attack),
and ``none`` has no key at all.
"""

from __future__ import annotations

import base64
from typing import Any

import attrs
from jwt import algorithms as jwa

__all__ = ["SUPPORTED_ALGORITHMS", "KeyRing", "VerifyKey", "jwk_key", "pem_key", "secret_key"]

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
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

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
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

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
