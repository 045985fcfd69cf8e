"""Consumer keys: ``[consumers.<name>.credentials.jwt]``, the way Kong's jwt plugin has them.

A consumer may own keys, each named by a key id (the token's JOSE ``kid`` header) or an issuer
(the token's ``iss`` claim); the plugin's ``key_claim_name`` says which one a token is looked up
by. A token whose kid (or iss) names a consumer key is verified with that key only and
authenticates as its consumer: the consumer's key wins over plugin-level keys and the JWKS, which
are not consulted for it. Because the kid is in the signed header (and iss in the signed
payload), a token signed with A's key but naming B's kid fails B's signature check.

A kid (or iss) that appears twice is refused at load: which consumer it means would be a guess.
"""

from __future__ import annotations

from typing import Any

import attrs
from triogate.jwks import VerifyKey, pem_key, secret_key

__all__ = ["ConsumerKey", "consumer_keys"]

_ENTRY_FIELDS = {"kid", "iss", "secret", "secret_is_base64", "public_key"}


@attrs.frozen
class ConsumerKey:
    """One consumer credential: the key, whose it is and an id for ``principal.credential``."""

    key: VerifyKey
    consumer: str
    credential: str


def _entry(consumer: str, i: int, entry: Any) -> tuple[str, str, VerifyKey]:
    where = f"consumers.{consumer}.credentials.jwt.keys[{i}]"
    if not isinstance(entry, dict):
        raise ValueError(f'{where}: expected a table {{ kid = "...", secret = "..." }} or {{ iss = "...", public_key = "..." }}')
    unknown = sorted(set(entry) - _ENTRY_FIELDS)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (expected kid or iss, and secret or public_key)")
    names = [n for n in ("kid", "iss") if n in entry]
    if len(names) != 1:
        raise ValueError(f"{where}: expected exactly one of kid or iss")
    name = names[0]
    value = entry[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{name}: expected a non-empty string")
    if ("secret" in entry) == ("public_key" in entry):
        raise ValueError(f"{where}: expected exactly one of secret or public_key")
    is_b64 = entry.get("secret_is_base64", False)
    if not isinstance(is_b64, bool):
        raise ValueError(f"{where}.secret_is_base64: expected true or false")
    material = entry.get("secret", entry.get("public_key"))
    field = "secret" if "secret" in entry else "public_key"
    if not isinstance(material, str) or not material:
        raise ValueError(f"{where}.{field}: expected a non-empty string")
    try:
        key = secret_key(material, is_b64) if field == "secret" else pem_key(material, 0)
    except ValueError as exc:  # the message names secret / public_keys[0]: restate it for this entry
        raise ValueError(f"{where}.{field}: {str(exc).split(': ', 1)[-1]}") from None
    except Exception:  # noqa: BLE001 - e.g. bad base64
        raise ValueError(f"{where}.{field}: not a valid {'base64url secret' if is_b64 else 'key'}") from None
    return name, value, attrs.evolve(key, kid=value if name == "kid" else None, origin=where)


def consumer_keys(credentials: dict[str, Any]) -> dict[str, dict[str, ConsumerKey]]:
    """``{"kid": {kid: key}, "iss": {iss: key}}`` from ``gateway.credentials("jwt")``; ValueError names the key path.

    Each consumer's table may hold ``subject`` (read elsewhere) and ``keys``: a list of
    ``{kid|iss, secret|public_key[, secret_is_base64]}`` tables.
    """
    out: dict[str, dict[str, ConsumerKey]] = {"kid": {}, "iss": {}}
    for consumer, table in credentials.items():
        if not isinstance(table, dict) or "keys" not in table:
            continue
        keys = table["keys"]
        if not isinstance(keys, list):
            raise ValueError(f"consumers.{consumer}.credentials.jwt.keys: expected a list of tables")
        for i, entry in enumerate(keys):
            name, value, key = _entry(consumer, i, entry)
            seen = out[name].get(value)
            if seen is not None:
                raise ValueError(f"consumers.{consumer}.credentials.jwt.keys[{i}].{name}: {value!r} is already "
                                 f"a key of consumer {seen.consumer!r} ({seen.key.origin}); a {name} must be unique")
            out[name][value] = ConsumerKey(key, consumer, f"{consumer}/jwt/{name}:{value}")
    return out
