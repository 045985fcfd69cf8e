"""A bounded TTL cache of introspection results keyed by a hash of the token, and call coalescing.

Keys are SHA-256 digests: the raw token is never a dict key, a log field or a metric label.
Concurrent lookups of the same token share one call (the first starts it in the gateway's
nursery, so a caller that goes away does not cancel it for the others).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["ResultCache", "Coalescer", "Unavailable"]


class Unavailable(Exception):
    """The introspection endpoint could not give an answer in time."""


class ResultCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: bytes, now: float) -> dict[str, Any] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[1]

    def put(self, key: bytes, value: dict[str, Any], expires: float) -> None:
        self._data[key] = (expires, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


class _Call:
    __slots__ = ("done", "result", "failed")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: dict[str, Any] | None = None
        self.failed = False


class Coalescer:
    """One in-flight call per key; every caller waits (bounded) for its result."""

    def __init__(self) -> None:
        self._inflight: dict[bytes, _Call] = {}
        self.calls = 0

    async def run(self, key: bytes, fn: Callable[[], Awaitable[dict[str, Any]]], nursery: Any, wait: float) -> dict[str, Any]:
        call = self._inflight.get(key)
        if call is None:
            call = self._inflight[key] = _Call()
            self.calls += 1
            if nursery is not None:
                nursery.start_soon(self._call, key, fn, call)
            else:
                await self._call(key, fn, call)
        with trio.move_on_after(wait):
            await call.done.wait()
        if not call.done.is_set() or call.failed or call.result is None:
            raise Unavailable()
        return call.result

    async def _call(self, key: bytes, fn: Callable[[], Awaitable[dict[str, Any]]], call: _Call) -> None:
        try:
            call.result = await fn()
        except Unavailable:
            call.failed = True
        except Exception:  # noqa: BLE001 - a bug in one lookup fails that lookup closed (503), nothing more
            logging.getLogger("triogate.oauth2-introspection").exception("introspection call failed")
            call.failed = True
        except BaseException:
            call.failed = True
            raise
        finally:
            self._inflight.pop(key, None)
            call.done.set()
