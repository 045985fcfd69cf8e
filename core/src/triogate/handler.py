"""What a front end serves: a request handler (the gateway, or the admin API).

The HTTP/1.1 server and the HTTP/2 listener are written against this protocol, not against
:class:`~triogate.Gateway`, so they sit below the gateway's users and never import it.
"""

from __future__ import annotations

from typing import Any, Protocol

from .messages import Request, Response

__all__ = ["RequestHandler"]


class RequestHandler(Protocol):
    """``handle`` a request, send the response, then ``finish`` with the context ``handle`` returned."""

    @property
    def config(self) -> Any:
        """Has ``.gateway``: the limits, timeouts and request-id header the front end applies."""
        ...

    async def handle(self, request: Request) -> tuple[Any, Response]: ...

    async def finish(self, ctx: Any) -> None: ...
