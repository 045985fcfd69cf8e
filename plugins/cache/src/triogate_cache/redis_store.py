"""The Redis store: responses shared by every gateway process and host using one Redis.

Layout (``P`` is ``redis.key_prefix + "cache:"``; ``G`` the key's URI group, host + path):

- ``P{G}<rest of key>`` → one encoded record (:mod:`.entry`), expiring with the entry;
- ``Pu:{G}`` → the set of record keys stored for ``G``, for invalidation after unsafe methods.

The ``{G}`` hash tag keeps every key of one URI in one Redis Cluster slot, so storing and
invalidating are single atomic scripts. Ages use the wall clock (``time.time()``), the only
clock gateways on several hosts share; keep their clocks in sync (NTP).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from triogate_redis import LuaScript, RedisClient, RedisUnavailable, shared_client

from .entry import Record, decode, encode
from .state import Shared

__all__ = ["RedisStore", "redis_shared"]

log = logging.getLogger("triogate.cache")

PUT = LuaScript("""
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
""", name="cache-put")

INVALIDATE = LuaScript("""
local keys = redis.call('SMEMBERS', KEYS[1])
for _, k in ipairs(keys) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
return #keys
""", name="cache-invalidate")

_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def _split(key: str) -> tuple[str, str]:
    """``(uri group, rest)``: the group ends where the query or the next key part starts."""
    for i, c in enumerate(key):
        if c in "?|":
            return key[:i], key[i:]
    return key, ""


class RedisStore:
    kind = "redis"

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def now(self) -> float:
        return time.time()

    def rkey(self, key: str) -> str:
        group, rest = _split(key)
        return f"{self.prefix}{{{group}}}{rest}"

    def ukey(self, group: str) -> str:
        return f"{self.prefix}u:{{{group}}}"

    async def get(self, key: str) -> Record | None:
        rkey = self.rkey(key)
        blob = await self.client.call(lambda c: c.get(rkey))
        if blob is None:
            return None
        try:
            return decode(blob)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cache: undecodable record at %s (%s); ignored", rkey, exc)
            return None

    async def put(self, uri: str, key: str, record: Record, ttl: float) -> bool:
        ms = int(ttl * 1000)
        if ms <= 0:
            return False
        await self.client.run_script(PUT, [self.rkey(key), self.ukey(uri)], [encode(record), ms])
        return True

    async def delete(self, key: str) -> bool:
        rkey = self.rkey(key)
        return bool(await self.client.call(lambda c: c.delete([rkey])))

    async def invalidate(self, uri: str) -> int:
        return int(await self.client.run_script(INVALIDATE, [self.ukey(uri)], []))

    async def purge(self, prefix: str) -> int:
        """SCAN for the keys under ``prefix`` and delete them (an admin operation, not per request)."""
        group, rest = _split(prefix)
        pattern = f"{self.prefix}{{{group.translate(_GLOB)}"
        pattern += f"}}{rest.translate(_GLOB)}*" if rest else "*"

        async def run(c: Any) -> int:
            n = 0
            batch: list[Any] = []
            async for k in c.scan_iter(match=pattern, count=500):
                batch.append(k)
                if len(batch) >= 500:
                    n += await c.delete(batch)
                    batch = []
            if batch:
                n += await c.delete(batch)
            return n

        return int(await self.client.call(run, timeout=max(self.client.config.timeout, 30.0)))

    async def aclose(self) -> None:
        return None


async def redis_shared(gateway: Any, config: Any) -> Any:
    """The :class:`~triogate_cache.state.Shared` of the Redis client of this loaded config."""
    client = await shared_client(gateway, config.redis, name="cache")
    return await gateway.shared(("triogate_cache", "redis", config.redis.identity),
                                lambda: Shared(RedisStore(client, config.redis.key_prefix + "cache:")))


__all__ += ["RedisUnavailable"]
