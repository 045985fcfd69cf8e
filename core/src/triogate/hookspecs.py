"""Hook specifications: the whole contract between the core and plugins.

Each spec's docstring states when the hook runs, what its result means and in what
order implementations are called (docs/hooks.md has the long form and examples).

Every hook but ``admin_routes`` is ``async``; the core awaits implementations one
after the other (:mod:`triogate.hookchain` precomputes the order per route), never
through pluggy's ``firstresult`` (a coroutine is never None). The order of a hook:

- implementations marked ``@hookimpl(tryfirst=True)`` first, then the unmarked ones,
  then those marked ``trylast=True``, whatever their priorities;
- within each of these three groups, by priority, highest first: the plugin class's
  ``priority``, a ``priority = N`` key in its table, a route's ``priorities``;
- ``post_response`` reverses each group (the onion: lowest priority first), so
  ``tryfirst`` still means called first there (sees the response first) and
  ``trylast`` called last (has the last word).

``specname="auth"`` makes a method of another name implement ``auth``.
``wrapper=True``/``hookwrapper=True`` are refused at load: hooks are awaited and a
pluggy wrapper is a generator; use a priority (or tryfirst/trylast) and ``post_response``.
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
    """Called once per loaded config, before it serves its first request (at start and on reload).

    Start background tasks in ``nursery``; they live as long as this config serves.
    Called one plugin at a time, in hook order (tryfirst, by priority, trylast); each must
    return within ``timeouts.startup``. Raising rejects the config (the gateway does not
    start, or a reload keeps the old config), after the ``shutdown`` hooks of the plugins
    already started ran.
    """


@hookspec
async def shutdown(gateway: GatewayServices) -> None:
    """Called when a config stops serving (shutdown, or the old config after a reload).

    Every implementation runs concurrently, all bounded together by ``timeouts.shutdown``
    (so tryfirst/trylast do not order them); one that raises is logged by name.
    """


# ---------------------------------------------------------------------------
# request phases
# ---------------------------------------------------------------------------


@hookspec
async def pre_route(ctx: Context) -> Response | None:
    """Before routing for global instances and hook modules (``ctx.route`` is None), on every
    request; right after the match, before ``auth``, for a route's own instances.

    Called in hook order; returning a :class:`~triogate.Response` ends the request phases
    (no later hook, phase or upstream call; ``post_response`` and ``log`` still run).
    ``None`` continues; anything else is that plugin's bug (500).
    """


@hookspec
async def auth(ctx: Context) -> Response | None:
    """After the route matched and its ``pre_route`` hooks ran: establish ``ctx.principal``,
    or record a challenge with ``ctx.challenge(...)``.

    Called in hook order, every implementation even when one set a principal (several auth
    plugins are an OR). Returning a :class:`~triogate.Response` ends the request phases.
    After the phase, no principal and a recorded challenge make the core answer 401.
    """


@hookspec
async def transform(ctx: Context) -> Response | None:
    """After authentication, before the upstream call: limits, rewrites, cache lookups, aggregation.

    Called in hook order; returning a :class:`~triogate.Response` (429, a cache hit, an
    aggregated answer) ends the request phases and no upstream is called.
    """


@hookspec
async def post_response(ctx: Context, response: Response) -> Response | None:
    """On every response before it is sent: from the upstream, a plugin that answered, the
    core (401/404/502/...) or a plugin failure; every implementation of the chain runs.

    Called in reversed priority order (the onion: the lowest priority sees the upstream's
    response first); tryfirst implementations are still called first and trylast last.
    May edit ``response``, wrap its body, or return a new Response that replaces it for
    the hooks called after (the old body is closed); ``None`` keeps ``response``.
    """


@hookspec
async def log(ctx: Context) -> None:
    """After the response has been sent (or the client went away); ``ctx`` holds status, sizes and timings.

    Called in hook order, every implementation; the result is ignored and an exception is
    only logged. Runs on the connection's task before its next request: keep it cheap.
    """


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------


@hookspec
def admin_routes(gateway: GatewayServices) -> list[Any] | None:
    """Return :class:`~triogate.AdminRoute` objects to serve on the admin listener.

    Synchronous; called once per config when the admin API first needs its routes, in
    pluggy's order (tryfirst first, trylast last; priorities do not apply). A path
    already served (a built-in, or an earlier result) is ignored.
    """
