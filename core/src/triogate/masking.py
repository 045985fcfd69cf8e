"""Secrets kept out of what operators read: config renders, config diffs, logs.

A config value is a secret when its field is marked (``setting(..., secret=True)``), when it
is the value of a map entry whose key looks like a credential (``headers = { authorization =
"Bearer ..." }``; the same names the access log redacts, see :func:`is_secret_name`), or the
password of a URL (``redis://:pw@host``). :func:`plain` renders a config object to JSON-able data
with each secret wrapped in a :class:`Secret`, which compares by its value (so a diff sees that a
secret changed) but never shows it; :func:`masked` then replaces every :class:`Secret` with its
mask, ``<secret 1a2b3c4d>``.

The eight hex digits in a mask are a fingerprint: two masks in one output are equal exactly when
the secrets are, so an operator sees which secret changed and which did not. It is an HMAC with a
key made at random for each process, not a plain hash: a plain SHA-256 of a short password or
token printed in a diff, a CI log or a ticket would let anyone confirm guesses of it offline.
The price is that masks are comparable within one output (one ``triogate diff``, one admin
answer) only, not across runs.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import attrs

__all__ = ["REDACTED", "Secret", "all_secret", "fingerprint", "has_secret", "is_secret_field", "is_secret_name",
           "mask", "mask_secrets", "mask_url", "masked", "plain"]

#: what the access log writes instead of a secret (a log line needs no fingerprint)
REDACTED = "REDACTED"

# names of query parameters, headers, map keys and log_extra keys whose values are secrets
_SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw|pwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key|signature|credential|"
    r"session|cookie|authorization|^auth$|^auth[-_]|jwt|^x-amz-|^sig$|^key$|^code$|^pass$|^otp$)"
)
# scheme://user:password@ -- the userinfo of a URL, up to the first / ? # after the scheme
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*):([^/?#]*)@")

_KEY = secrets.token_bytes(32)


def is_secret_name(name: str) -> bool:
    """Whether a header, query parameter or map key name says its value is a credential."""
    return _SECRET_NAME.search(name) is not None


def is_secret_field(field: attrs.Attribute) -> bool:  # type: ignore[type-arg]
    """Whether a config field is marked ``setting(..., secret=True)``."""
    return bool(field.metadata.get("secret"))


def fingerprint(value: Any) -> str:
    """Eight hex digits that identify ``value`` within this process (an HMAC with a per-process key)."""
    data = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hmac.new(_KEY, data.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:8]


def mask(value: Any) -> str:
    """What is shown instead of a secret: ``<secret 1a2b3c4d>``."""
    return f"<secret {fingerprint(value)}>"


def mask_url(url: str) -> str | None:
    """``url`` with the password of its userinfo masked, or None when it has no password."""
    m = _URL_USERINFO.match(url)
    if m is None or not m.group(3):
        return None
    return f"{m.group(1)}{m.group(2)}:{mask(m.group(3))}@{url[m.end():]}"


class Secret:
    """A secret config value inside rendered data: equal to another by value, shown only masked."""

    __slots__ = ("shown", "value")

    def __init__(self, value: Any, shown: str | None = None) -> None:
        self.value = value
        self.shown = shown if shown is not None else mask(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and type(other.value) is type(self.value) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.shown)

    def __repr__(self) -> str:  # never the value, even in a traceback or a debug print
        return self.shown


def _string(value: str) -> str | Secret:
    shown = mask_url(value)
    return value if shown is None else Secret(value, shown)


def plain(obj: Any, *, secret: bool = False) -> Any:
    """``obj`` (attrs objects, dicts, lists, scalars) as JSON-able data with secrets wrapped in :class:`Secret`.

    ``secret=True`` wraps the whole value (a marked field). Map entries whose key looks like a
    credential and URLs with a password are secrets wherever they are.
    """
    if secret and obj is not None:
        return Secret(_raw(obj))
    if attrs.has(type(obj)):
        return {f.name: all_secret(getattr(obj, f.name)) if f.metadata.get("secret_leaves")
                else plain(getattr(obj, f.name), secret=is_secret_field(f))
                for f in attrs.fields(type(obj)) if not f.metadata.get("internal")}
    if isinstance(obj, Mapping):
        return {str(k): plain(v, secret=isinstance(k, str) and is_secret_name(k) and isinstance(v, str))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [plain(v) for v in items]
    if isinstance(obj, str):
        return _string(obj)
    return _raw(obj)


def all_secret(value: Any) -> Any:
    """Every leaf of ``value`` a :class:`Secret`, its shape kept: for tables whose secret keys are unknown
    here (plugin tables and consumer credentials, before their plugin describes them)."""
    if isinstance(value, Mapping):
        return {str(k): all_secret(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [all_secret(v) for v in value]
    return plain(value, secret=True)


def _raw(obj: Any) -> Any:
    """A value as plain JSON-able data, secrets left in (what a :class:`Secret` holds and compares)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if attrs.has(type(obj)):
        return {f.name: _raw(getattr(obj, f.name)) for f in attrs.fields(type(obj)) if not f.metadata.get("internal")}
    if isinstance(obj, Mapping):
        return {str(k): _raw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_raw(v) for v in (sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj)]
    if isinstance(obj, enum.Enum):
        return _raw(obj.value)
    if isinstance(obj, PurePath):
        return str(obj)
    pattern = getattr(obj, "pattern", None)  # a compiled regex
    return pattern if isinstance(pattern, str) else str(obj)


def masked(data: Any) -> Any:
    """Rendered data (from :func:`plain`) with every :class:`Secret` replaced by its mask: safe to show."""
    if isinstance(data, Secret):
        return data.shown
    if isinstance(data, dict):
        return {k: masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v) for v in data]
    return data


def has_secret(data: Any) -> bool:
    """Whether rendered data holds a :class:`Secret` anywhere."""
    if isinstance(data, Secret):
        return True
    if isinstance(data, dict):
        return any(has_secret(v) for v in data.values())
    if isinstance(data, list):
        return any(has_secret(v) for v in data)
    return False


def mask_secrets(obj: Any) -> Any:
    """A config object (a plugin's ``Config``, a core config section) as plain data with secrets masked.

    Fields marked ``metadata={"secret_leaves": True}`` (the gateway config's plugin tables and
    consumers' credentials, whose secret keys only their plugins know) have every value masked;
    :func:`triogate.configdiff.render_config` renders a whole gateway config with the plugins' own marks.
    """
    return masked(plain(obj))
