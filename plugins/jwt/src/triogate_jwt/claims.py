"""Reading scopes, roles and arbitrary (dotted) claims, and turning claims into header values."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["claim", "header_value", "roles_of", "scopes_of"]

_MISSING = object()


def claim(claims: dict[str, Any], path: str) -> Any:
    """``claims["a"]["b"]`` for ``"a.b"``; a claim literally named ``"a.b"`` wins. None when absent."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _words(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 8693 ``scope`` (space-separated) and the common ``scp`` (list or string)."""
    return _words(claims.get("scope")) | _words(claims.get("scp"))


def roles_of(claims: dict[str, Any], path: str) -> frozenset[str]:
    return _words(claim(claims, path))


def header_value(value: Any) -> bytes | None:
    """A claim as one header value (lists comma-joined, objects as JSON); None when unsafe or absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        text = ",".join(str(v) for v in value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raw = text.encode("utf-8")
    if any(b < 0x20 and b != 0x09 or b == 0x7F for b in raw):
        return None  # CR/LF/NUL would let a claim inject headers
    return raw
