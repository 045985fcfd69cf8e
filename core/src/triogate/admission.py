"""Admission: what a client's request headers may carry into the pipeline.

Runs once per request, on every listener and protocol, before any plugin. Doing it here
rather than at forward time is what makes identity headers trustworthy: fields named in
``Connection`` are removed *before* plugins add the headers they vouch for, so a client
cannot name ``x-consumer-username`` in ``Connection`` and have the asserted value removed
on the way out; and the client's own copies of identity headers never reach a plugin or
the upstream.
"""

from __future__ import annotations

from collections.abc import Iterable

from .auth import IDENTITY_HEADERS, IDENTITY_PREFIX
from .headers import Headers
from .proxy import connection_tokens

__all__ = ["Admission", "RESERVED_REQUEST_HEADERS"]

_PREFIX = IDENTITY_PREFIX.encode()
_PLAIN, _AUTHORIZATION, _DIRTY, _CONNECTION = 0, 1, 2, 3
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade", b"keep-alive, upgrade", b"upgrade, keep-alive"})
_MAX_KNOWN = 4096
# Connection may name these, but the core needs them (routing, framing already decided, the
# upgrade decision); they are dropped or rewritten at forward time anyway
_KEEP_NAMED = frozenset({b"host", b"content-length", b"transfer-encoding", b"upgrade"})
# the only Connection tokens left after admission
_KEEP_TOKENS = (b"upgrade", b"close", b"keep-alive")
# RFC 9113 §3.1: connection-specific to an h2c upgrade; never forwarded, never useful to a plugin
_NEVER = frozenset({b"http2-settings"})

#: names a plugin cannot declare as identity headers: clients send them legitimately (the
#: auth plugins read them) or the core owns them
RESERVED_REQUEST_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "host", "content-length", "transfer-encoding", "connection",
    "upgrade", "te", "trailer", "keep-alive", "proxy-connection", "expect", "forwarded", "x-forwarded-for",
    "x-forwarded-proto", "x-forwarded-host", "via",
})


class Admission:
    """The header policy of one loaded config (built once per load, applied per request)."""

    __slots__ = ("identity", "underscores", "_kinds")

    def __init__(self, declared: Iterable[str], underscores: str) -> None:
        names = {n.lower() for n in IDENTITY_HEADERS} | {n.lower() for n in declared}
        # compared with "_" read as "-", so X_User_Id is a look-alike of x-user-id in every mode
        self.identity = frozenset(n.replace("_", "-").encode("latin-1") for n in names) | _NEVER
        self.underscores = underscores  # "drop" | "allow" | "reject"
        # name -> _PLAIN / _AUTHORIZATION / _DIRTY, so the common request costs one dict lookup per field
        self._kinds: dict[bytes, int] = {b"authorization": _AUTHORIZATION, b"connection": _CONNECTION}

    def _kind(self, name: bytes) -> int:
        kind = _DIRTY if name in self.identity or b"_" in name or name.startswith(_PREFIX) else _PLAIN
        if len(self._kinds) < _MAX_KNOWN:  # bounded: a client inventing names cannot grow it
            self._kinds[name] = kind
        return kind

    def admit(self, headers: Headers) -> str | None:
        """Clean ``headers`` in place; the reason to refuse the request with 400, or None.

        - two ``Authorization`` fields: refused (a singleton field; which one would a plugin read?);
        - fields named in ``Connection`` are removed, and ``Connection`` keeps only
          ``upgrade``/``close``/``keep-alive``;
        - identity headers (the core's, ``x-consumer-*``, every declared one, and their ``_``
          look-alikes) are removed;
        - other names with ``_``: removed, kept or refused per ``gateway.underscores_in_headers``.
        """
        raw = headers.raw
        known = self._kinds.get
        dirty = False
        auth = 0
        for n, v in raw:
            kind = known(n)
            if kind is None:
                kind = self._kind(n)
            if kind == _AUTHORIZATION:
                auth += 1
            elif kind == _CONNECTION:
                # "keep-alive", "close", "upgrade" name nothing the core would have to remove
                dirty = dirty or v.lower() not in _PLAIN_CONNECTION
            elif kind:
                dirty = True
        if auth > 1:
            return "more than one Authorization header"
        if not dirty:  # the common case: one pass, no copy
            return None
        named = connection_tokens(raw)
        drop = named - _KEEP_NAMED
        mode = self.underscores
        identity = self.identity
        out: list[tuple[bytes, bytes]] = []
        for n, v in raw:
            if n == b"connection" or n in drop:
                continue
            if b"_" in n:
                if mode == "reject":
                    return f"header field name with an underscore: {n.decode('latin-1')!r}"
                if mode == "drop":
                    continue
                n2 = n.replace(b"_", b"-")
                if n2 in identity or n2.startswith(_PREFIX):
                    continue
            elif n in identity or n.startswith(_PREFIX):
                continue
            out.append((n, v))
        kept = [t for t in _KEEP_TOKENS if t in named]
        if kept:
            out.append((b"connection", b", ".join(kept)))
        raw[:] = out
        return None
