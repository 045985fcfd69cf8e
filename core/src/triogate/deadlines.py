"""Coarse timeouts without a timer per I/O call.

Entering a trio cancel scope per read or write costs more than parsing the request
with llhttp (measured: one scope per proxied request takes ~18% of throughput).
Connections instead carry a ``deadline`` float that the hot path updates by plain
assignment, and one watcher task per server checks them every ``interval``
seconds and expires the late ones (timeouts are precise to ``interval``, which is
what nginx's timer resolution gives too).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import trio

__all__ = ["Expirable", "DeadlineWatcher", "shared_watcher"]


class Expirable(Protocol):
    deadline: float

    def expire(self) -> None:
        """Called once when ``trio.current_time()`` passed ``deadline`` (e.g. cancel or close)."""


class DeadlineWatcher:
    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.watched: set[Any] = set()

    def add(self, obj: Expirable) -> None:
        self.watched.add(obj)

    def discard(self, obj: Expirable) -> None:
        self.watched.discard(obj)

    def check(self, now: float) -> int:
        """Expire everything past its deadline; returns how many expired."""
        late = [o for o in self.watched if o.deadline <= now]
        for o in late:
            o.deadline = math.inf
            o.expire()
        return len(late)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            self.check(trio.current_time())


_WATCHER: trio.lowlevel.RunVar[DeadlineWatcher] = trio.lowlevel.RunVar("triogate_deadline_watcher")


def shared_watcher() -> DeadlineWatcher:
    """The watcher of the current trio run (upstream connections use it); started on first use."""
    try:
        return _WATCHER.get()
    except LookupError:
        watcher = DeadlineWatcher(0.05)
        _WATCHER.set(watcher)
        trio.lowlevel.spawn_system_task(watcher.run, name="triogate deadline watcher")
        return watcher
