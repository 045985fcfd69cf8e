"""A JWK Set fetched over the gateway's HTTP client: TTL cache, background refresh,
rate-limited refresh on an unknown kid, and the last good keys kept while the endpoint is down.

With OIDC discovery the ``jwks_uri`` comes from ``{issuer}/.well-known/openid-configuration``
(whose ``issuer`` must equal the configured one, OIDC Discovery §4.3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import triogate

from .keys import KeyRing, jwk_key

__all__ = ["JWKSSource", "running_source"]

log = logging.getLogger("triogate.jwt")
MAX_DOCUMENT_BYTES = 1 << 20


class JWKSError(Exception):
    pass


class JWKSSource:
    def __init__(
        self, http: triogate.HTTPClient, *, jwks_uri: str | None, issuer: str | None, ttl: float,
        min_interval: float, timeout: float,
    ) -> None:
        self.http = http
        self.jwks_uri = jwks_uri
        self.issuer = issuer  # set only with discovery
        self.ttl = ttl
        self.min_interval = min_interval
        self.timeout = timeout
        self.ring = KeyRing([])
        self.loaded_at: float | None = None
        self.last_attempt = -math.inf
        self.fetches = 0
        self.failures = 0
        self.started = False  # a background refresher runs
        self.generation = 0  # bumped whenever the key set changes
        self._doc_keys: Any = None
        self._inflight: trio.Event | None = None
        self._last_ok = False

    @property
    def label(self) -> str:
        return self.jwks_uri or f"discovery of {self.issuer}"

    def stale(self, now: float) -> bool:
        return self.loaded_at is None or now - self.loaded_at >= self.ttl

    # ------------------------------------------------------------------ fetching

    async def _get_json(self, url: str) -> Any:
        try:
            resp = await self.http.fetch("GET", url, headers=[("accept", "application/json")],
                                         timeout=self.timeout, limit=MAX_DOCUMENT_BYTES)
        except (triogate.GatewayError, triogate.UpstreamError, triogate.UpstreamTimeout, triogate.BodyTooLarge,
                OSError, ValueError) as exc:
            raise JWKSError(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if resp.status != 200:
            raise JWKSError(f"GET {url}: status {resp.status}")
        try:
            return resp.json()
        except ValueError:
            raise JWKSError(f"GET {url}: not JSON") from None

    async def _discover(self) -> str:
        assert self.issuer is not None
        doc = await self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
            raise JWKSError("discovery document's issuer does not match the configured issuer")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            raise JWKSError("discovery document has no usable jwks_uri")
        return uri

    async def _load(self) -> None:
        if self.jwks_uri is None:
            self.jwks_uri = await self._discover()
        doc = await self._get_json(self.jwks_uri)
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise JWKSError(f"GET {self.jwks_uri}: not a JWK Set")
        keys = [k for k in (jwk_key(j) for j in doc["keys"]) if k is not None]
        skipped = len(doc["keys"]) - len(keys)
        if skipped:
            log.warning("jwks %s: %d key(s) skipped (not usable for signature verification)", self.jwks_uri, skipped)
        if doc["keys"] != self._doc_keys:
            self._doc_keys = doc["keys"]
            self.generation += 1  # verified-token caches drop what older keys vouched for
        self.ring = KeyRing(keys)
        self.loaded_at = trio.current_time()

    async def refresh(self) -> bool:
        """Fetch the keys now (concurrent callers share one fetch); False keeps the old keys."""
        if self._inflight is not None:
            await self._inflight.wait()
            return self._last_ok
        done = self._inflight = trio.Event()
        self.last_attempt = trio.current_time()
        self.fetches += 1
        ok = False
        try:
            await self._load()
            ok = True
        except JWKSError as exc:
            self.failures += 1
            log.warning("jwks refresh failed (%s); keeping %d known key(s)", exc, len(self.ring))
        finally:
            self._last_ok = ok
            self._inflight = None
            done.set()
        return ok

    async def refresh_if_allowed(self) -> bool:
        """Refresh for an unknown kid, at most once per ``min_interval`` (joins a running fetch)."""
        if self._inflight is None and trio.current_time() - self.last_attempt < self.min_interval:
            return False
        return await self.refresh()

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Background refresher: every ``ttl`` seconds, sooner again after a failure."""
        self.started = True
        task_status.started()
        try:
            while True:
                try:
                    ok = await self.refresh() if self.stale(trio.current_time()) else True
                except Exception:
                    log.exception("jwks refresh of %s crashed; keeping the known keys", self.label)
                    ok = False
                if ok and self.loaded_at is not None:
                    delay = max(self.loaded_at + self.ttl - trio.current_time(), 0.01)
                else:
                    delay = min(self.ttl, max(self.min_interval, 1.0))
                await trio.sleep(delay)
        finally:
            self.started = False


@asynccontextmanager
async def running_source(http: triogate.HTTPClient, **settings: Any) -> AsyncIterator[JWKSSource]:
    """A :class:`JWKSSource` whose background refresher runs until the block ends."""
    src = JWKSSource(http, **settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(src.run)
        yield src
        nursery.cancel_scope.cancel()
