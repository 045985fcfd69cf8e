"""Server-side sessions in Redis (``session_store = "redis"``), shared by every worker and gateway.

The cookie then holds only the sealed session id; the session (tokens included) is stored sealed
with the same cookie keys, so a copy of the Redis data alone reveals no token. Logout deletes it
(every copy of the cookie is dead at once), and refreshes take a Redis lock per session, so one
session refreshes once across all workers and hosts. Keys are ``<key_prefix>oidc:{<sid>}:s`` and
``...:lock`` (one hash slot per session for Redis Cluster); each expires with its session.
"""

from __future__ import annotations

import secrets
from typing import Any

from triogate_redis import LuaScript, RedisClient, RedisUnavailable

__all__ = ["RedisSessions", "RedisUnavailable"]

_SAVE = LuaScript("redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1", name="oidc-save")
_LOCK = LuaScript("if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end return 0",
                  name="oidc-lock")
_UNLOCK = LuaScript("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                    name="oidc-unlock")


class RedisSessions:
    def __init__(self, client: RedisClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, sid: str, kind: str) -> str:
        return f"{self.prefix}oidc:{{{sid}}}:{kind}"

    async def load(self, sid: str) -> str | None:
        key = self._key(sid, "s")
        value: Any = await self.client.call(lambda c: c.get(key))
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return value if isinstance(value, str) and value else None

    async def save(self, sid: str, sealed: str, ttl: float) -> None:
        await self.client.run_script(_SAVE, [self._key(sid, "s")], [sealed, max(int(ttl * 1000), 1)])

    async def delete(self, sid: str) -> None:
        key = self._key(sid, "s")
        await self.client.call(lambda c: c.delete([key]))

    async def lock(self, sid: str, ttl: float) -> str | None:
        """A token that owns the session's refresh lock for ``ttl`` seconds, or None when another holds it."""
        token = secrets.token_urlsafe(12)
        got = await self.client.run_script(_LOCK, [self._key(sid, "lock")], [token, max(int(ttl * 1000), 1)])
        return token if int(got) == 1 else None

    async def unlock(self, sid: str, token: str) -> None:
        await self.client.run_script(_UNLOCK, [self._key(sid, "lock")], [token])
