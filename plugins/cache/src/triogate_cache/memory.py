"""The in-process store: an LRU bounded in bytes, on trio's clock (so tests can drive it with a mock clock)."""

from __future__ import annotations

from collections import OrderedDict

import trio

from .entry import Record

__all__ = ["MemoryStore"]


class MemoryStore:
    """Least-recently-used records up to ``max_bytes`` in total; each record also has a deadline.

    ``uri`` groups every key stored for one request URI (routes, consumers, variants) so that
    invalidation after an unsafe method (RFC 9111 §4.4) is one dictionary lookup.
    Per process: with ``workers > 1`` or several hosts, use the Redis store to share.
    """

    kind = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, tuple[Record, int, float, str]] = OrderedDict()
        self._by_uri: dict[str, set[str]] = {}
        self.stats = {"evictions": 0, "expired": 0}

    def now(self) -> float:
        return trio.current_time()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> Record | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[2] <= self.now():
            self._drop(key)
            self.stats["expired"] += 1
            return None
        self._items.move_to_end(key)
        return item[0]

    async def put(self, uri: str, key: str, record: Record, ttl: float) -> bool:
        size = record.size + len(key)
        if ttl <= 0 or size > self.max_bytes:
            return False
        if key in self._items:
            self._drop(key)
        while self.bytes + size > self.max_bytes and self._items:
            oldest = next(iter(self._items))
            self._drop(oldest)
            self.stats["evictions"] += 1
        self._items[key] = (record, size, self.now() + ttl, uri)
        self._by_uri.setdefault(uri, set()).add(key)
        self.bytes += size
        return True

    async def delete(self, key: str) -> bool:
        return self._drop(key)

    async def invalidate(self, uri: str) -> int:
        keys = self._by_uri.pop(uri, set())
        for key in keys:
            self._drop(key)
        return len(keys)

    async def purge(self, prefix: str) -> int:
        keys = [k for k in self._items if k.startswith(prefix)]
        for key in keys:
            self._drop(key)
        return len(keys)

    def _drop(self, key: str) -> bool:
        item = self._items.pop(key, None)
        if item is None:
            return False
        self.bytes -= item[1]
        keys = self._by_uri.get(item[3])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_uri[item[3]]
        return True

    async def aclose(self) -> None:
        return None
