"""A cap on one listener's open client connections (``gateway.limits.max_connections``).

An accept loop awaits :meth:`ConnectionCap.room` before each ``accept()``, calls
:meth:`~ConnectionCap.opened` for the connection it accepted and :meth:`~ConnectionCap.closed`
when that connection ends. At the cap, once a new connection is waiting in the listen
backlog, the idle keep-alive connection closest to its idle timeout is closed to make room
(nginx reuses idle connections the same way); with none idle, the loop stops accepting and
new connections wait in the kernel's backlog until a connection ends or goes idle, rather
than being accepted and dropped.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

__all__ = ["ConnectionCap"]

log = logging.getLogger("triogate.server")
# accept() errors that pass (out of file descriptors or memory): log, wait a little, go on
_ACCEPT_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

#: (idle deadline, cancel scope) of a connection that may be closed to make room
Idle = tuple[float, trio.CancelScope]


class ConnectionCap:
    def __init__(self, cap: Callable[[], int], idle: Callable[[], Iterable[Idle]]) -> None:
        self._cap = cap      # read on every check, so a reload applies to the next accept
        self._idle = idle
        self.open = 0        # connections accepted and not closed yet (TLS handshakes included)
        self._freed = trio.Event()
        self._waiting = False

    async def room(self, sock: Any) -> None:
        """Return once the listener may accept another connection."""
        cap = self._cap()
        if not cap or self.open < cap:
            return
        await trio.lowlevel.wait_readable(sock)  # someone is knocking
        try:
            while self.open >= (cap := self._cap()) and cap:
                self._freed = trio.Event()
                self._waiting = True
                oldest = min(self._idle(), default=None, key=lambda i: i[0])
                if oldest is not None:
                    oldest[1].cancel()
                await self._freed.wait()
        finally:
            self._waiting = False

    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1
        self._freed.set()

    def went_idle(self) -> None:
        """A connection finished a request and waits for the next: at the cap, it may make room."""
        if self._waiting:
            self._freed.set()

    async def accept_forever(self, listener: trio.SocketListener, nursery: trio.Nursery,
                             handler: Callable[[trio.SocketStream], Awaitable[None]]) -> None:
        """The accept loop of a listener: accept within the cap, run ``handler`` for each connection
        in ``nursery`` (counted until it returns); transient accept errors are logged and retried."""
        while True:
            await self.room(listener.socket)
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in _ACCEPT_RETRY_ERRNOS:
                    log.error("accept failed (%s); retrying", exc)
                    await trio.sleep(0.1)
                    continue
                raise
            self.opened()
            nursery.start_soon(self._counted, handler, stream)

    async def _counted(self, handler: Callable[[trio.SocketStream], Awaitable[None]],
                       stream: trio.SocketStream) -> None:
        try:
            await handler(stream)
        finally:
            self.closed()
