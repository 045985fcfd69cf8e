"""The key table built from ``[consumers.<name>.credentials.key-auth]``.

Each consumer lists ``keys``: ``"sha256:<64 hex digits>"`` (recommended: the config then holds no
usable secret) or a plain key. Lookups hash the presented key and index by digest, then compare
digests with :func:`hmac.compare_digest`: the time taken does not depend on how much of a stored
key the presented one matches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

__all__ = ["KeyTable", "digest"]

_HEX = re.compile(r"[0-9a-fA-F]{64}")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyTable:
    def __init__(self, credentials: dict[str, Any]) -> None:
        self._by_digest: dict[bytes, tuple[bytes, str, str]] = {}
        for consumer, table in credentials.items():
            where = f"consumers.{consumer}.credentials.key-auth"
            if not isinstance(table, dict) or set(table) - {"keys"} or not isinstance(table.get("keys"), list):
                raise ValueError(f'{where}: expected a table with keys = ["sha256:<hex>", ...]')
            for i, key in enumerate(table["keys"]):
                if not isinstance(key, str) or not key:
                    raise ValueError(f"{where}.keys[{i}]: expected a non-empty string")
                if key.startswith("sha256:"):
                    if not _HEX.fullmatch(key[7:]):
                        raise ValueError(f"{where}.keys[{i}]: expected sha256: and 64 hex digits")
                    d = bytes.fromhex(key[7:])
                else:
                    d = digest(key)
                if d in self._by_digest:
                    raise ValueError(f"{where}.keys[{i}]: the same key is already used by {self._by_digest[d][1]!r}")
                self._by_digest[d] = (d, consumer, f"{consumer}/key-auth/{i}")

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, key: str) -> tuple[str, str] | None:
        """``(consumer, credential id)`` for a presented key, or None."""
        d = digest(key)
        entry = self._by_digest.get(d)
        if entry is None or not hmac.compare_digest(entry[0], d):
            return None
        return entry[1], entry[2]
