"""Password hashes: bcrypt and argon2 only, verified with their well-kept libraries.

Plain-text passwords are refused at config load. Checks are slow on purpose, so the plugin
runs them in a worker thread; an unknown username is checked against a dummy hash so that
answering does not reveal whether the user exists.
"""

from __future__ import annotations

import functools
from typing import Any

import argon2
import bcrypt

__all__ = ["kind_of", "verify", "dummy_hash", "Users"]

_BCRYPT = ("$2a$", "$2b$", "$2y$")
_ARGON2 = ("$argon2id$", "$argon2i$", "$argon2d$")
_hasher = argon2.PasswordHasher()


def kind_of(stored: str) -> str | None:
    if stored.startswith(_BCRYPT):
        return "bcrypt"
    if stored.startswith(_ARGON2):
        return "argon2"
    return None


def verify(stored: str, password: str) -> bool:
    pw = password.encode("utf-8")
    if stored.startswith(_BCRYPT):
        try:
            return bcrypt.checkpw(pw, stored.encode())
        except ValueError:  # e.g. longer than bcrypt's 72 bytes
            return False
    try:
        return _hasher.verify(stored, pw)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    return bcrypt.hashpw(b"triogate-no-such-user", bcrypt.gensalt(rounds=10)).decode()


class Users:
    """``username -> (consumer, credential id, stored hash)`` from ``[consumers.*.credentials.basic-auth]``."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.by_name: dict[str, tuple[str, str, str]] = {}
        for consumer, value in credentials.items():
            tables = value if isinstance(value, list) else [value]
            for i, table in enumerate(tables):
                where = f"consumers.{consumer}.credentials.basic-auth" + (f"[{i}]" if isinstance(value, list) else "")
                if not isinstance(table, dict) or set(table) != {"username", "password_hash"}:
                    raise ValueError(f'{where}: expected a table with username = "..." and password_hash = "..."')
                user, stored = table["username"], table["password_hash"]
                if not isinstance(user, str) or not user or ":" in user:
                    raise ValueError(f"{where}.username: expected a non-empty string without ':'")
                if not isinstance(stored, str) or kind_of(stored) is None:
                    raise ValueError(
                        f"{where}.password_hash: expected a bcrypt ($2b$...) or argon2 ($argon2id$...) hash;"
                        " plain-text passwords are not accepted")
                if user in self.by_name:
                    raise ValueError(f"{where}.username: {user!r} already belongs to {self.by_name[user][0]!r}")
                self.by_name[user] = (consumer, f"{consumer}/basic-auth/{user}", stored)
