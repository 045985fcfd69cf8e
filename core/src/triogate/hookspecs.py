"""Hook specifications: the whole contract between the core and plugins.

Every request-phase hook is ``async`` and is awaited by the core in priority
order (highest first). Returning a :class:`~triogate.Response` from a request
phase ends the request phases early; ``post_response`` still runs on it.
The core never uses pluggy's ``firstresult`` (a coroutine is never None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import trio

    from .context import Context, GatewayServices
    from .messages import Response

hookspec = pluggy.HookspecMarker("triogate")

# ---------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------


@hookspec
async def startup(gateway: GatewayServices, nursery: trio.Nursery) -> None:
    """Called once per loaded config before it serves; start background tasks in ``nursery``."""


@hookspec
async def shutdown(gateway: GatewayServices) -> None:
    """Called when a config stops serving (shutdown or reload), bounded by a deadline."""


# ---------------------------------------------------------------------------
# request phases
# ---------------------------------------------------------------------------


@hookspec
async def pre_route(ctx: Context) -> Response | None:
    """Before routing for global instances (``ctx.route`` is None); right after the match for route instances."""


@hookspec
async def auth(ctx: Context) -> Response | None:
    """Establish ``ctx.principal`` or record a challenge with ``ctx.challenge(...)``."""


@hookspec
async def transform(ctx: Context) -> Response | None:
    """After authentication, before the upstream call: limits, rewrites, cache lookups, aggregation."""


@hookspec
async def post_response(ctx: Context, response: Response) -> Response | None:
    """On every response, innermost (lowest priority) first; may edit it, wrap its body or replace it."""


@hookspec
async def log(ctx: Context) -> None:
    """After the response has been sent (or the client went away); ``ctx`` holds status, sizes and timings."""


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------


@hookspec
def admin_routes(gateway: GatewayServices) -> list[Any] | None:
    """Return :class:`~triogate.AdminRoute` objects to serve on the admin listener."""
