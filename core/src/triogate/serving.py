"""Serving a gateway: bind its listeners, start the right front end on each, the admin API, drain.

The top of the serving stack: it imports the gateway (:mod:`triogate.app`) and the front ends
(:mod:`triogate.server`, :mod:`triogate.h2listener`, :mod:`triogate.admin`); none of them import it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .admin import start_admin
from .app import Gateway, StartupError
from .listeners import BoundListener, open_listeners, server_ssl_context
from .server import HTTP1Server

__all__ = ["serve", "serve_listeners"]


async def serve_listeners(nursery: trio.Nursery, gateway: Any, listeners: list[BoundListener]) -> list[Any]:
    servers = []
    for bl in listeners:
        if bl.cfg.protocol == "h2":
            # hypercorn and h2 cost ~40 ms at import (a fifth of `import triogate`): only for h2 listeners.
            # An allowed exception (core/tests/test_layers.py); h2listener imports nothing above it.
            from .h2listener import H2Server

            server: Any = H2Server(gateway, bl.cfg, bl.sock)
        else:
            server = HTTP1Server(gateway, bl.cfg, server_ssl_context(bl.cfg, ["http/1.1"]))
            listener = trio.SocketListener(bl.sock)
            await nursery.start(server.run, listener)
            servers.append(server)
            continue
        await nursery.start(server.run)
        servers.append(server)
    return servers


async def serve(
    gateway: Gateway,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
    sockets: list[Any] | None = None,
) -> None:
    """Serve ``gateway`` on its configured listeners until ``shutdown_trigger`` returns.

    Works with ``nursery.start``: it reports the bound ``(host, port)`` list when listening.
    Shutdown stops accepting, lets in-flight requests finish up to ``timeouts.drain``,
    then runs plugin shutdown hooks.
    """
    cfg = gateway.config
    listeners = await open_listeners(cfg.gateway.listen, sockets=sockets)
    failure: StartupError | None = None
    async with trio.open_nursery() as nursery:
        try:
            await gateway.start(nursery)
        except BaseException as exc:
            for lst in listeners:
                lst.sock.close()
            if not isinstance(exc, StartupError):
                raise
            failure = exc  # raised below, outside the nursery, so callers see it unwrapped
            nursery.cancel_scope.cancel()
        if failure is None:
            servers = await serve_listeners(nursery, gateway, listeners)
            gateway.admin = await start_admin(nursery, gateway, servers, supervised=sockets is not None)
            task_status.started([lst.bound for lst in listeners])
            if shutdown_trigger is None:
                await trio.sleep(math.inf)
            else:
                await shutdown_trigger()
            for server in servers:
                server.stop_accepting()
            with trio.move_on_after(gateway.config.gateway.timeouts.drain):
                for server in servers:
                    await server.drain()
            for server in servers:
                server.close_all()
            await gateway.aclose()
            nursery.cancel_scope.cancel()
    if failure is not None:
        with trio.CancelScope(shield=True):
            await gateway.aclose()  # the generation already ended: closes the HTTP client and access log
        raise failure
