"""The table built from ``[consumers.<name>.credentials.mtls-auth]``: certificate identities → consumer.

A consumer lists any of ``fingerprints`` (SHA-256 of the DER, hex, colons allowed), ``subjects``
(RFC 4514 DNs, normalized by parsing, so ``cn=alice, o=Example`` equals ``CN=alice,O=Example``),
``dns_names``, ``uris`` and ``emails`` (subject alternative names). One identity belongs to one
consumer: a duplicate is a config error. A certificate is matched in the order fingerprint,
subject, URI, DNS name, email (the most specific first); the first match wins.
"""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from triogate import ClientCert

__all__ = ["KINDS", "IdentityTable", "normalize_subject"]

#: credential keys, in matching order
KINDS = ("fingerprints", "subjects", "uris", "dns_names", "emails")

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def normalize_subject(dn: str) -> str:
    """The RFC 4514 string ``ClientCert.subject`` would show for ``dn``; ``ValueError`` if unparsable.

    Spaces around ``,``, ``+`` and ``=`` and lower-case attribute types are accepted (cryptography's
    parser is strict about both); the RDN order is kept: write it as ``openssl x509 -noout -subject
    -nameopt RFC2253`` prints it, most specific first.
    """
    parts: list[str] = []
    buf = ""
    i = 0
    while i < len(dn):
        ch = dn[i]
        if ch == "\\" and i + 1 < len(dn):
            buf += dn[i:i + 2]
            i += 2
            continue
        if ch in ",+":
            parts.append(buf)
            parts.append(ch)
            buf = ""
        else:
            buf += ch
        i += 1
    parts.append(buf)
    out = []
    for part in parts:
        if part in (",", "+"):
            out.append(part)
            continue
        kind, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"no '=' in {part.strip()!r}")
        value = value.lstrip()
        if value.endswith(" ") and not value.endswith("\\ "):
            value = value.rstrip()
        out.append(f"{kind.strip().upper()}={value}")
    return x509.Name.from_rfc4514_string("".join(out)).rfc4514_string()


def _normalize(kind: str, value: str) -> str:
    if kind == "fingerprints":
        # the prefix goes before the colons do: "SHA256:AB:..." and openssl's whole
        # "sha256 Fingerprint=AB:..." line are accepted (removing colons first left "sha256ab...")
        fp = value.lower()
        for prefix in ("sha256 fingerprint=", "sha256:", "sha256="):
            fp = fp.removeprefix(prefix)
        fp = fp.replace(":", "")
        if not _FINGERPRINT.fullmatch(fp):
            raise ValueError("expected a SHA-256 fingerprint: 64 hex digits (colons allowed)")
        return fp
    if kind == "subjects":
        try:
            return normalize_subject(value)
        except ValueError as exc:
            reason = f" ({exc})" if str(exc) else ""
            raise ValueError(f"expected an RFC 4514 distinguished name like 'CN=alice,O=Example'{reason}") from None
    if kind in ("dns_names", "emails"):
        return value.lower()  # DNS names and (in practice) mailbox domains compare case-insensitively
    return value


class IdentityTable:
    def __init__(self, credentials: dict[str, Any]) -> None:
        self._by: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        for consumer, table in credentials.items():
            where = f"consumers.{consumer}.credentials.mtls-auth"
            if not isinstance(table, dict) or not table or set(table) - set(KINDS):
                raise ValueError(f"{where}: expected a table with one or more of {', '.join(KINDS)} (lists of strings)")
            for kind, values in table.items():
                if not isinstance(values, list):
                    raise ValueError(f"{where}.{kind}: expected a list of strings")  # noqa: TRY004 - a config error
                for i, value in enumerate(values):
                    if not isinstance(value, str) or not value.strip():
                        raise ValueError(f"{where}.{kind}[{i}]: expected a non-empty string")
                    try:
                        norm = _normalize(kind, value.strip())
                    except ValueError as exc:
                        raise ValueError(f"{where}.{kind}[{i}]: {exc}, got {value!r}") from None
                    owner = self._by[kind].get(norm)
                    if owner is not None and owner != consumer:
                        raise ValueError(f"{where}.{kind}[{i}]: {value!r} already belongs to consumer {owner!r}")
                    self._by[kind][norm] = consumer

    def __len__(self) -> int:
        return sum(len(t) for t in self._by.values())

    def find(self, cert: ClientCert) -> tuple[str, str] | None:
        """``(consumer, how)`` for a certificate (``how``: the credential key that matched), or None."""
        candidates: dict[str, tuple[str, ...]] = {
            "fingerprints": (cert.fingerprint,), "subjects": (cert.subject,), "uris": cert.uris,
            "dns_names": tuple(d.lower() for d in cert.dns_names), "emails": tuple(e.lower() for e in cert.emails),
        }
        for kind in KINDS:
            table = self._by[kind]
            for value in candidates[kind]:
                consumer = table.get(value)
                if consumer is not None:
                    return consumer, kind
        return None
