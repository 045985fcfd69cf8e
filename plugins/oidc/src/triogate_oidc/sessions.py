"""The sessions of one oidc instance: read from and written to the cookie (or Redis), and refreshed
once at a time.

Refreshes happen one at a time per session in each worker: concurrent requests of one session
wait for the running refresh and reuse its result (kept for a minute, so requests still carrying
the old cookie do not spend the rotated refresh token again). With sessions in the cookie,
workers do not share that lock (see the README); with ``session_store = "redis"`` a Redis lock per
session makes it one refresh across every worker and gateway.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import trio

from .cipher import CookieCipher
from .config import OidcConfig
from .cookies import CookieJar
from .provider import LoginRejected, Provider, ProviderError
from .session import Session, session_from_tokens
from .store import RedisSessions, RedisUnavailable

__all__ = ["Sessions"]

log = logging.getLogger("triogate.oidc")
FRESH_SECONDS = 60.0  # how long a refreshed session is reused by requests that still carry the old cookie


class Sessions:
    """Sealing, storing and refreshing sessions; ``provider`` and ``store`` are set at startup."""

    def __init__(self, config: OidcConfig, cipher: CookieCipher, jar: CookieJar, name: str) -> None:
        c = config
        self.config = config
        self.cipher = cipher
        self.jar = jar
        self.name = name  # the plugin instance, for log lines
        # AEAD associated data: a sealed value is good for one purpose, provider and client only
        self.session_purpose = f"session|{c.issuer}|{c.client_id}|{c.cookie_name}"
        self.stored_purpose = f"stored-session|{c.issuer}|{c.client_id}|{c.cookie_name}"
        self.provider: Provider | None = None
        self.store: RedisSessions | None = None
        self._locks: dict[str, trio.Lock] = {}
        self._fresh: OrderedDict[str, tuple[float, Session]] = OrderedDict()

    def forget(self, sid: str) -> None:
        self._fresh.pop(sid, None)

    async def read(self, jar: dict[str, str]) -> tuple[Session | None, bool]:
        """The session the cookies name, and whether a cookie was there but could not be opened.

        Raises :class:`RedisUnavailable` with ``session_store = "redis"`` while Redis is down.
        """
        value = self.jar.session_value(jar)
        if not value:
            return None, False
        payload = self.cipher.open(value, self.session_purpose)
        if payload is None:
            return None, True
        if self.store is None:
            session = Session.from_payload(payload)
            return session, session is None
        sid = payload.get("sid")
        if not isinstance(sid, str):
            return None, True
        return await self.stored(sid), False  # None: logged out, or expired in Redis

    async def stored(self, sid: str) -> Session | None:
        assert self.store is not None
        sealed = await self.store.load(sid)
        data = self.cipher.open(sealed, self.stored_purpose) if sealed else None
        session = Session.from_payload(data) if data else None
        return session if session is not None and session.sid == sid else None

    async def write(self, session: Session, sent: set[str], *, cookie: bool = True) -> list[str]:
        """Store ``session``; the ``Set-Cookie`` values that carry it (none for a stored session's refresh)."""
        ttl = session.started + self.config.session_lifetime - time.time()
        if self.store is None:
            return self.jar.set_session(self.cipher.seal(session.to_payload(), self.session_purpose, ttl), ttl, sent)
        await self.store.save(session.sid, self.cipher.seal(session.to_payload(), self.stored_purpose, ttl), ttl)
        if not cookie:
            return []
        return self.jar.set_session(self.cipher.seal({"sid": session.sid}, self.session_purpose, ttl), ttl, sent)

    async def refresh(self, session: Session) -> Session | None:
        """A refreshed session, or None when the provider refused (the session is over).

        One refresh per session at a time in this worker; a request that carries tokens older than
        the last refresh of its session (it waited for it, or was sent with the old cookie) reuses it.
        """
        lock = self._locks.setdefault(session.sid, trio.Lock())
        try:
            async with lock:
                now = time.time()
                hit = self._fresh.get(session.sid)
                if hit is not None and hit[0] > now and (hit[1].expires_at or 0) > (session.expires_at or 0):
                    return hit[1]  # refreshed since this request's cookie was written
                fresh = await (self._shared_refresh(session) if self.store is not None else self._token_refresh(session))
                if fresh is not None:
                    self._fresh[session.sid] = (now + FRESH_SECONDS, fresh)
                    self._fresh.move_to_end(session.sid)
                    while len(self._fresh) > 10000:
                        self._fresh.popitem(last=False)
                return fresh
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(session.sid, None)

    async def _token_refresh(self, session: Session) -> Session | None:
        """The provider's refresh of ``session`` (None: refused)."""
        assert self.provider is not None and session.refresh_token is not None
        try:
            tokens = await self.provider.refresh(session.refresh_token)
            id_token = tokens.get("id_token")
            claims = session.claims()
            if isinstance(id_token, str):
                try:
                    claims = await self.provider.verify_id_token(id_token, nonce=None, subject=session.subject)
                except ProviderError:  # no keys to check it now: keep the old ID token, and the new tokens
                    tokens = {k: v for k, v in tokens.items() if k != "id_token"}
        except LoginRejected as exc:
            log.info("oidc %s: refresh refused (%s); the session ends", self.name, exc.reason)
            return None
        return session_from_tokens(tokens, claims, previous=session)

    async def _shared_refresh(self, session: Session) -> Session | None:
        """Refresh a stored session once across every worker and gateway: a Redis lock per session.

        Whoever holds the lock refreshes and stores the result; the others wait for it (at most
        ``http_timeout``) and read the stored session. Raises :class:`ProviderError` when the
        provider or the other refresh fails to finish in time.
        """
        store = self.store
        assert store is not None
        deadline = trio.current_time() + self.config.http_timeout
        while True:
            token = await store.lock(session.sid, self.config.http_timeout * 2 + 1)
            current = await self.stored(session.sid)
            if current is None or (current.expires_at or 0) > (session.expires_at or 0):
                if token is not None:
                    await store.unlock(session.sid, token)
                return current  # ended meanwhile, or another worker refreshed it
            if token is not None:
                break
            if trio.current_time() >= deadline:
                raise ProviderError("another gateway's refresh of this session did not finish in time")
            await trio.sleep(0.05)
        try:
            fresh = await self._token_refresh(current)
            if fresh is None:
                await store.delete(session.sid)
            else:
                await self.write(fresh, set(), cookie=False)
            return fresh
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await store.unlock(session.sid, token)
                except RedisUnavailable:
                    pass  # the lock expires by itself
