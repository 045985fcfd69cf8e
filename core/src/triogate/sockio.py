"""Direct non-blocking socket I/O for plain TCP connections on the hot path.

trio's ``SocketStream.receive_some``/``send_all`` wrap every call in an error
translating context manager, a conflict detector and a forced schedule point;
on a proxied request that is four calls and a measurable share of the CPU. For
plain TCP sockets these helpers try the system call first and wait for
readiness only when it would block, keeping trio's semantics where they matter:
every call is a cancellation point, a closed socket raises
``trio.ClosedResourceError``, a broken one ``trio.BrokenResourceError``, and bulk
transfers (full reads, large writes) still yield to other tasks. TLS and other
streams go through the stream API unchanged.
"""

from __future__ import annotations

import socket
from typing import Any

import trio

__all__ = ["raw_socket", "receive_some", "send_all", "yields"]

_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_checkpoint = trio.lowlevel.checkpoint
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable
_BULK = 16384
#: how many times these helpers let trio schedule other tasks (see :func:`yields`)
_YIELDS = 0


def yields() -> int:
    """A counter that moves whenever any task yielded in these helpers.

    The server reads it before and after a request: if it did not move, no other task can have
    run in between through these helpers, so the connection may not have yielded at all (its
    client always had the next bytes ready) and must yield before the next request. If it moved,
    either this task waited or another one ran, which means this one was suspended meanwhile.
    """
    return _YIELDS


def raw_socket(stream: Any) -> socket.socket | None:
    """The stdlib socket behind a plain ``trio.SocketStream``; None for TLS and other streams."""
    if type(stream) is trio.SocketStream:
        sock = getattr(stream.socket, "_sock", None)
        if isinstance(sock, socket.socket):
            return sock
    return None


def _error(sock: socket.socket, exc: OSError) -> Exception:
    if sock.fileno() == -1:
        return trio.ClosedResourceError("socket was closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


async def receive_some(sock: socket.socket | None, stream: Any, max_bytes: int) -> bytes:
    global _YIELDS
    if sock is None:
        return await stream.receive_some(max_bytes)
    await _checkpoint_if_cancelled()
    while True:
        try:
            data = sock.recv(max_bytes)
        except BlockingIOError:
            _YIELDS += 1
            await _wait_readable(sock)
            continue
        except OSError as exc:
            raise _error(sock, exc) from exc
        if len(data) == max_bytes:
            _YIELDS += 1
            await _checkpoint()  # bulk transfer: let other connections run
        return data


async def send_all(sock: socket.socket | None, stream: Any, data: bytes) -> None:
    global _YIELDS
    if sock is None:
        await stream.send_all(data)
        return
    await _checkpoint_if_cancelled()
    total = len(data)
    try:
        sent = sock.send(data)
    except BlockingIOError:
        sent = 0
    except OSError as exc:
        raise _error(sock, exc) from exc
    if sent == total:
        if total >= _BULK:
            _YIELDS += 1
            await _checkpoint()
        return
    view = memoryview(data)
    while sent < total:
        _YIELDS += 1
        await _wait_writable(sock)
        try:
            sent += sock.send(view[sent:])
        except BlockingIOError:
            continue
        except OSError as exc:
            raise _error(sock, exc) from exc
