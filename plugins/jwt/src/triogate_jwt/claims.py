"""Scopes and roles of a verified token (claim lookup and header values: ``triogate.auth``)."""

from __future__ import annotations

from typing import Any

from triogate.auth import claim, word_set

__all__ = ["roles_of", "scopes_of"]


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 8693 ``scope`` (space-separated) and the common ``scp`` (list or string)."""
    return word_set(claims.get("scope")) | word_set(claims.get("scp"))


def roles_of(claims: dict[str, Any], path: str) -> frozenset[str]:
    return word_set(claim(claims, path))
