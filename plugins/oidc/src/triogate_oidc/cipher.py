"""Encrypted, authenticated cookie values: AES-256-GCM with a ring of keys (the first encrypts, all decrypt).

Why AES-GCM (``cryptography``'s AEAD) rather than Fernet or a JWE library: a cookie is small, so
overhead counts -- GCM adds 12 bytes of nonce and a 16-byte tag where Fernet adds a version,
a timestamp, a 16-byte IV, CBC padding and a 32-byte HMAC; and GCM's associated data binds
each value to its purpose (the cookie name), so a login cookie can never be replayed as a
session cookie or the other way round. No new dependency: ``cryptography`` is the core's.

A value is ``base64url(version | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag)``. The key
id (the first bytes of SHA-256 of the key) picks the key to try, so rotation costs no extra
decryption; the payload carries its own expiry, checked after decryption.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CookieCipher", "decode_key", "key_problem"]

VERSION = b"\x01"
KEY_BYTES = 32
NONCE_BYTES = 12


def decode_key(text: str) -> bytes:
    """32 bytes from base64url (or standard base64) text; ValueError otherwise."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes, expected {KEY_BYTES}")
    return raw


def key_problem(text: str) -> str | None:
    """Why ``text`` is not a usable cookie key (never showing the key), or None."""
    try:
        decode_key(text)
    except ValueError as exc:
        return (f"expected 32 random bytes in base64url (43 characters; generate one: python -c \"import secrets; "
                f'print(secrets.token_urlsafe(32))"): {exc}')
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieCipher:
    """Seal and open JSON payloads with the configured keys."""

    def __init__(self, keys: list[str]) -> None:
        raw = [decode_key(k) for k in keys]
        self.ring = [(hashlib.sha256(k).digest()[:4], AESGCM(k)) for k in raw]

    def seal(self, payload: dict[str, Any], purpose: str, ttl: float) -> str:
        """An opaque cookie value for ``payload``, valid ``ttl`` seconds, usable only for ``purpose``."""
        kid, aead = self.ring[0]
        body = json.dumps({"exp": round(time.time() + ttl, 3), "v": payload}, separators=(",", ":")).encode()
        nonce = os.urandom(NONCE_BYTES)
        return _b64(VERSION + kid + nonce + aead.encrypt(nonce, body, purpose.encode()))

    def open(self, value: str, purpose: str) -> dict[str, Any] | None:
        """The payload of a value :meth:`seal` made for ``purpose`` with a configured key, not expired; else None."""
        try:
            data = _unb64(value)
        except (binascii.Error, ValueError):
            return None
        if len(data) < 1 + 4 + NONCE_BYTES + 16 or data[:1] != VERSION:
            return None
        kid, nonce, sealed = data[1:5], data[5:5 + NONCE_BYTES], data[5 + NONCE_BYTES:]
        for key_id, aead in self.ring:
            if key_id != kid:
                continue
            try:
                body = json.loads(aead.decrypt(nonce, sealed, purpose.encode()))
            except (InvalidTag, ValueError):
                continue
            if not isinstance(body, dict) or not isinstance(body.get("exp"), (int, float)) or body["exp"] < time.time():
                return None
            payload = body.get("v")
            return payload if isinstance(payload, dict) else None
        return None
