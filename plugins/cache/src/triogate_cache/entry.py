"""What the cache stores: a response (:class:`Entry`) or, for a URI whose responses vary, the
names of the request headers that select a variant (:class:`VaryIndex`); and their wire form."""

from __future__ import annotations

import json
import struct
from typing import Any

import attrs

from .directives import CacheControl, field_names, parse_cache_control

__all__ = ["Entry", "Record", "VaryIndex", "decode", "encode"]


@attrs.define(eq=False)
class Entry:
    """A stored response with what its age and freshness are computed from (RFC 9111 §4.2).

    ``request_time``/``response_time`` are wall-clock seconds; ``stored_at`` is in the
    store's own clock (trio's clock for memory, wall clock for Redis); ``initial_age`` is
    the corrected initial age at ``stored_at``.
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    request_time: float
    response_time: float
    initial_age: float
    stored_at: float
    freshness: float
    vary: dict[str, str] = attrs.Factory(dict)
    _cc: CacheControl | None = attrs.field(default=None, init=False, repr=False)

    @property
    def cc(self) -> CacheControl:
        if self._cc is None:
            self._cc = parse_cache_control([v.decode("latin-1") for n, v in self.headers if n == b"cache-control"])
        return self._cc

    def header(self, name: bytes) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v.decode("latin-1")
        return None

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.stored_at)

    @property
    def etag(self) -> str | None:
        return self.header(b"etag")

    @property
    def last_modified(self) -> str | None:
        return self.header(b"last-modified")

    @property
    def has_validators(self) -> bool:
        return self.etag is not None or self.last_modified is not None

    @property
    def must_revalidate(self) -> bool:
        """Stale use forbidden without validation: must-revalidate, proxy-revalidate or s-maxage (§5.2.2.10)."""
        cc = self.cc
        return "must-revalidate" in cc or "proxy-revalidate" in cc or "s-maxage" in cc

    @property
    def no_cache(self) -> bool:
        """Unqualified response ``no-cache``: every use needs validation (qualified fields were not stored)."""
        cc = self.cc
        return "no-cache" in cc and not field_names(cc["no-cache"])

    def extension(self, name: str) -> float:
        """``stale-while-revalidate`` / ``stale-if-error`` seconds (RFC 5861), 0 when absent."""
        raw = self.cc.get(name)
        return float(raw) if raw is not None and raw.isdigit() else 0.0

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(n) + len(v) + 4 for n, v in self.headers) + 200


@attrs.define(eq=False)
class VaryIndex:
    """Stored under a URI's primary key when its responses carry ``Vary``: the selecting header names."""

    names: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(len(n) for n in self.names) + 100


Record = Entry | VaryIndex

_LEN = struct.Struct(">I")


def encode(record: Record) -> bytes:
    if isinstance(record, VaryIndex):
        return b"V" + json.dumps(list(record.names)).encode()
    meta: dict[str, Any] = {
        "s": record.status,
        "h": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in record.headers],
        "rq": record.request_time, "rs": record.response_time, "ia": record.initial_age,
        "sa": record.stored_at, "f": record.freshness, "v": record.vary,
    }
    m = json.dumps(meta, separators=(",", ":")).encode()
    return b"E" + _LEN.pack(len(m)) + m + record.body


def decode(blob: bytes) -> Record:
    """Inverse of :func:`encode`; raises ``ValueError`` on anything else."""
    kind = blob[:1]
    if kind == b"V":
        names = json.loads(blob[1:])
        return VaryIndex(tuple(str(n) for n in names))
    if kind != b"E" or len(blob) < 5:
        raise ValueError("not a cache record")
    (n,) = _LEN.unpack_from(blob, 1)
    meta = json.loads(blob[5:5 + n])
    return Entry(
        status=int(meta["s"]),
        headers=[(a.encode("latin-1"), b.encode("latin-1")) for a, b in meta["h"]],
        body=bytes(blob[5 + n:]),
        request_time=float(meta["rq"]), response_time=float(meta["rs"]), initial_age=float(meta["ia"]),
        stored_at=float(meta["sa"]), freshness=float(meta["f"]), vary=dict(meta["v"]),
    )
