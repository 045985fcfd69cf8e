"""JSON bodies: which media types are JSON, strict parsing, compact re-encoding."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "is_json", "loads"]


def is_json(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/<anything>+json`` (parameters ignored)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly: ``NaN`` and ``Infinity`` (which Python accepts) are a ``ValueError`` too."""
    return json.loads(data, parse_constant=_reject_constant)


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON (no spaces, non-ASCII kept as is)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
