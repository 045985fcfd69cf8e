"""Resources that plugin instances share, with a lifetime the core owns.

A plugin asks for one with ``await services.shared(key, factory, scope=...)``; every caller
with the same key and scope gets the same object, made once by ``factory()``:

- ``scope="config"``: one per loaded config. It is closed after a reload has retired that
  config and its in-flight requests are done (or when the gateway stops).
- ``scope="process"``: one per gateway (each worker process has its own), kept across
  reloads and closed when the gateway stops.

``factory()`` returns either an async context manager, entered in a task of the scope's
nursery (its ``__aenter__`` value is the resource; it is exited when the scope ends, so it
may run background tasks in a nursery of its own), or the resource itself, whose ``aclose()``
(if it has one) is awaited when the scope ends. Resources close newest first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import trio

__all__ = ["Scope", "SharedResourceError", "SharedResources"]

log = logging.getLogger("triogate")

Scope = Literal["config", "process"]
SCOPES: tuple[Scope, ...] = ("config", "process")


class SharedResourceError(Exception):
    """A shared resource's factory failed (or was cancelled) while starting; the next call tries again."""

    def __init__(self, key: Hashable, scope: str, detail: str) -> None:
        super().__init__(f"shared resource {key!r} ({scope} scope) failed to start: {detail}")
        self.key = key
        self.scope = scope
        self.detail = detail


def _is_context_manager(obj: object) -> bool:
    return isinstance(obj, AbstractAsyncContextManager) or (
        hasattr(obj, "__aenter__") and hasattr(obj, "__aexit__"))


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Slot:
    """One resource: started once, waited for by concurrent first callers, closed once."""

    __slots__ = ("cancel", "close", "closed", "closer", "error", "ready", "value")

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.value: Any = None
        self.error: SharedResourceError | None = None
        self.close = trio.Event()  # set: the holder task exits the context manager
        self.closed = trio.Event()
        self.cancel: trio.CancelScope | None = None
        self.closer: Callable[[], Awaitable[Any]] | None = None  # ``aclose`` of a plain resource


class SharedResources:
    """The shared resources of one scope: a loaded config, or the gateway process."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._slots: dict[Hashable, _Slot] = {}
        self._started: list[_Slot] = []  # oldest first
        self._nursery: trio.Nursery | None = None
        self._closing = False

    def bind(self, nursery: trio.Nursery) -> None:
        """Run this scope's resources in ``nursery`` (the config's, or the gateway's)."""
        self._nursery = nursery

    def __len__(self) -> int:
        return len(self._started)

    async def get(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """The resource under ``key``, made with ``factory`` by the first caller."""
        slot = self._slots.get(key)
        if slot is not None:
            await slot.ready.wait()
            if slot.error is not None:
                raise slot.error
            return slot.value
        if self._nursery is None or self._closing:
            state = "is closing" if self._closing else "has not started"
            raise RuntimeError(f"shared resource {key!r}: the {self.scope} scope {state} "
                               "(ask for shared resources in startup or in a request hook)")
        slot = self._slots[key] = _Slot()
        try:
            made = factory()
            if _is_context_manager(made):
                slot.value = await self._nursery.start(self._hold, key, made, slot)
            else:
                slot.value = made
                closer = getattr(made, "aclose", None)
                slot.closer = closer if callable(closer) else None
                slot.closed.set()
        except BaseException as exc:
            if self._slots.get(key) is slot:
                del self._slots[key]
            slot.error = SharedResourceError(key, self.scope, _describe(exc))
            slot.ready.set()
            if isinstance(exc, Exception):
                raise slot.error from exc
            raise
        self._started.append(slot)
        slot.ready.set()
        return slot.value

    async def _hold(self, key: Hashable, manager: Any, slot: _Slot,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep ``manager`` entered until the scope closes it; a crash later is logged, not raised."""
        started = False
        try:
            with trio.CancelScope() as slot.cancel:
                async with manager as value:
                    task_status.started(value)
                    started = True
                    await slot.close.wait()
        except Exception:
            if not started:
                raise
            log.exception("shared resource %r (%s scope) failed", key, self.scope)
        finally:
            slot.closed.set()
            if started and not slot.close.is_set() and self._slots.get(key) is slot:
                del self._slots[key]  # it ended by itself: the next caller makes a new one

    async def aclose(self, timeout: float) -> None:
        """Close every resource, newest first, within ``timeout`` seconds in all; no new ones after this."""
        self._closing = True
        slots, self._started = self._started[::-1], []
        self._slots.clear()
        if not slots:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(timeout):
                for slot in slots:
                    slot.close.set()
                    if slot.closer is not None:
                        try:
                            await slot.closer()
                        except Exception:
                            log.exception("closing shared resource %r (%s scope) failed", slot.value, self.scope)
                    await slot.closed.wait()
            late = [s for s in slots if not s.closed.is_set()]
            for slot in late:
                if slot.cancel is not None:
                    slot.cancel.cancel()
            if late:
                log.error("%d shared resource(s) of the %s scope did not close within %s s (timeouts.shutdown)",
                          len(late), self.scope, timeout)
