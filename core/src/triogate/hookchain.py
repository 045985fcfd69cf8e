"""Hook chains: which implementations of a hook run, in what order, and how they are called.

The one owner of everything between a plugin's ``@hookimpl`` and a call: reading and
validating each implementation's pluggy options, registering plugin instances and hook
modules with pluggy, ordering every hook (priority, route ``priorities``, ``tryfirst`` and
``trylast``), adapting implementations that take fewer arguments than the spec, and timing
them for tracing plugins. The result is precomputed lists of ``(plugin name, callable)``
per route and phase, so a request only iterates and awaits: the pipeline runs request
phases, the gateway the lifecycle hooks, the admin API ``admin_routes``.

pluggy's options (``HookimplOpts``): ``tryfirst``/``trylast`` are honoured (before/after every
other implementation of that hook, whatever its priority; among several, by priority);
``specname`` is honoured (the method implements the hook it names); ``optionalhook`` keeps
pluggy's meaning (no error for a name that is no hook; nothing calls it). ``wrapper`` and
``hookwrapper`` are refused: a wrapper is a generator and our hooks are awaited.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import pluggy

from . import hookspecs

if TYPE_CHECKING:
    from .context import Context

__all__ = [
    "ASYNC_HOOKS",
    "HOOK_ORDER",
    "PHASES",
    "Chain",
    "HookChains",
    "HookImpl",
    "Lifecycle",
    "Use",
    "check_impls",
    "declared_impls",
    "make_plugin_manager",
]

PROJECT = "triogate"
PHASES = ("pre_route", "auth", "transform", "post_response", "log")
#: every hook, in the order it first runs in a gateway's life
HOOK_ORDER = ("startup", *PHASES, "shutdown", "admin_routes")
ASYNC_HOOKS = frozenset({"startup", "shutdown", *PHASES})
#: each hook's arguments, in the spec's order: the core calls implementations positionally
SPEC_ARGS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(getattr(hookspecs, name)).parameters) for name in HOOK_ORDER
}
Hook = tuple[str, Any]  # (plugin name, call)

_BEFORE, _AMONG, _AFTER = 0, 1, 2  # tryfirst, neither, trylast


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


# ---------------------------------------------------------------------------
# implementations and their options
# ---------------------------------------------------------------------------


class HookImpl(NamedTuple):
    """One ``@hookimpl`` found on a plugin class, instance or hook module."""

    attr: str  # the attribute it was found under
    hook: str  # the hook it implements: ``specname`` or the attribute's name
    opts: dict[str, Any]  # pluggy's HookimplOpts


_PARSER = pluggy.PluginManager(PROJECT)  # only reads markers; never registers anything


def declared_impls(obj: Any) -> list[HookImpl]:
    """Every ``@triogate.hookimpl`` of ``obj``, found the way pluggy finds them at registration."""
    out = []
    for attr in dir(obj):
        try:
            opts = _PARSER.parse_hookimpl_opts(obj, attr)
        except Exception:  # noqa: BLE001, S112 - pluggy skips what it cannot inspect; so do we
            continue
        if opts is not None:
            out.append(HookImpl(attr, opts.get("specname") or attr, dict(opts)))
    return out


def check_impls(obj: Any, label: str, owner: str = "") -> list[str]:
    """Errors for implementations triogate cannot call as their author meant.

    ``label`` is the key path of the use (``routes.r.plugins.jwt``), ``owner`` names it in
    messages when the label does not (``plugin 'jwt'``). Arguments not in the spec and hooks
    that do not exist are left to pluggy's own validation at registration and ``check_pending``.
    """
    who = f"{label}: {owner}" if owner else label
    errors = []
    seen: dict[str, str] = {}
    for impl in sorted(declared_impls(obj), key=lambda i: _hook_rank(i.hook)):
        hook, opts = impl.hook, impl.opts
        wrapper = [option for option in ("wrapper", "hookwrapper") if opts.get(option)]
        if wrapper:
            errors.append(
                f"{who}: hook {hook} is marked @hookimpl({wrapper[0]}=True), which triogate does not"
                " support: hooks are awaited one after the other, and a pluggy wrapper is a generator that"
                " cannot await. To run before or after other plugins use a priority (or tryfirst=True /"
                " trylast=True); to act on the response, implement post_response")
            continue
        if opts.get("tryfirst") and opts.get("trylast"):
            errors.append(f"{who}: hook {hook} is marked both tryfirst=True and trylast=True; choose one")
        if hook not in SPEC_ARGS:
            continue  # pluggy reports an unknown hook, unless optionalhook=True (then nothing calls it)
        if hook in seen:
            errors.append(f"{who}: hook {hook} is implemented twice ({seen[hook]} and {impl.attr}); keep one")
            continue
        seen[hook] = impl.attr
        fn = getattr(obj, impl.attr)
        is_async = inspect.iscoroutinefunction(fn)
        if hook in ASYNC_HOOKS and inspect.isasyncgenfunction(fn):
            errors.append(f"{label}: hook {hook} must be an async function that returns, not an async generator"
                          f" (no yield in {impl.attr})")
        elif hook in ASYNC_HOOKS and not is_async:
            errors.append(f"{label}: hook {hook} must be an async function (async def {impl.attr}(...))")
        elif hook not in ASYNC_HOOKS and is_async:
            errors.append(f"{label}: hook {hook} must be a plain (not async) function")
    return errors


def _hook_rank(hook: str) -> int:
    return HOOK_ORDER.index(hook) if hook in HOOK_ORDER else len(HOOK_ORDER)


# ---------------------------------------------------------------------------
# chains
# ---------------------------------------------------------------------------


@attrs.define
class Use:
    """One registered plugin instance or hook module, with the priority it was configured with."""

    name: str  # the plugin's config name, or ``hooks:<spec>`` for a hook module
    obj: Any
    priority: int
    scope: str  # "global", "route" or "hooks"

    @property
    def label(self) -> str:
        """How logs and errors name it: a route instance carries its route."""
        return f"{self.name}@{self.obj.route}" if self.scope == "route" else self.name

    @property
    def registered_as(self) -> str:
        """Its name in the plugin manager (and for ``admin_routes`` owners): ``jwt@*``, ``jwt@route``."""
        return self.name if self.scope == "hooks" else f"{self.name}@{self.obj.route or '*'}"


@attrs.define
class Chain:
    """The ordered hook calls of each phase for one route (or for no route)."""

    pre_route: list[Hook] = attrs.Factory(list)
    auth: list[Hook] = attrs.Factory(list)
    transform: list[Hook] = attrs.Factory(list)
    post_response: list[Hook] = attrs.Factory(list)
    log: list[Hook] = attrs.Factory(list)
    order: list[str] = attrs.Factory(list)  # plugin names by priority (tryfirst/trylast aside)


class Lifecycle(NamedTuple):
    """A use's ``startup`` call (in start order) and the ``shutdown`` call that undoes it, if any."""

    label: str
    startup: Callable[..., Any]
    shutdown: Callable[..., Any] | None


class HookChains:
    """The plugin manager of one loaded config, and the ordered calls of every hook.

    Register every use with :meth:`register`, then :meth:`seal` once; after that the
    chains, lifecycle and admin-route calls are plain lists, computed once.
    """

    def __init__(self) -> None:
        self.pm: pluggy.PluginManager = make_plugin_manager()
        self.uses: list[Use] = []
        #: a plugin asking for hook timings (tracing) makes every phase hook call timed
        self.timed = False
        self.startup: list[Lifecycle] = []
        self.shutdown: list[Hook] = []
        self.admin_routes: list[Hook] = []
        self._impls: dict[str, dict[int, Any]] = {}

    def register(self, use: Use, label: str, owner: str = "", refused: Sequence[str] = ()) -> list[str]:
        """Validate ``use``'s hook options and register it with pluggy, unless ``refused`` (the
        caller's own errors about it) is not empty; every error, none when registered.

        ``label`` is the use's key path, ``owner`` what names it when the label does not.
        """
        errors = [*check_impls(use.obj, label, owner), *refused]
        if errors:
            return errors
        try:
            self.pm.register(use.obj, name=use.registered_as)
        except Exception as exc:  # noqa: BLE001 - pluggy validation: unknown hook argument, duplicate name
            return [f"{label}: {owner}: {exc}" if owner else f"{label}: {exc}"]
        self.uses.append(use)
        return []

    def seal(self) -> list[str]:
        """Check what pluggy left pending (hooks that do not exist), then order the lifecycle hooks."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            return [f"plugins: {exc}"]
        self._impls = {hook: {id(i.plugin): i for i in getattr(self.pm.hook, hook).get_hookimpls()}
                       for hook in HOOK_ORDER}
        self.timed = any(getattr(type(u.obj), "wants_hook_timings", False) for u in self.uses)
        by_priority = sorted(self.uses, key=lambda u: -u.priority)
        shutdown = self._impls["shutdown"]
        self.startup = [Lifecycle(u.label, fn, _adapt(shutdown[id(u.obj)], "shutdown") if id(u.obj) in shutdown
                                  else None)
                        for u, fn in self._ordered(by_priority, "startup")]
        self.shutdown = [(u.label, fn) for u, fn in self._ordered(by_priority, "shutdown")]
        # admin routes keep pluggy's call order (no priorities); the first route of a path serves it
        self.admin_routes = [(i.plugin_name, _adapt(i, "admin_routes"))
                             for i in reversed(self.pm.hook.admin_routes.get_hookimpls())]
        return []

    def chain(self, uses: Iterable[Use], overrides: dict[str, int], *, for_route: bool = True) -> Chain:
        """The chain of one route (``for_route``) or of requests no route matched (global uses)."""
        forward = sorted(uses, key=lambda u: -overrides.get(u.name, u.priority))
        chain = Chain(order=[u.name for u in forward])
        for phase in PHASES:
            candidates = forward
            if phase == "pre_route" and for_route:
                # global pre_route hooks run before routing (global chain); a route's chain keeps only its own
                candidates = [u for u in forward if u.scope == "route"]
            hooks = [(u.name, fn) for u, fn in self._ordered(candidates, phase)]
            if self.timed:
                hooks = [(name, _timed(name, phase, fn)) for name, fn in hooks]
            setattr(chain, phase, hooks)
        return chain

    def _ordered(self, forward: list[Use], hook: str) -> list[tuple[Use, Any]]:
        """``(use, call)`` of the uses implementing ``hook``: tryfirst ones, the rest, trylast ones.

        ``forward`` is in priority order (highest first), which each band keeps; for
        ``post_response`` each band runs reversed (the onion: lowest priority first).
        """
        impls = self._impls[hook]
        bands: tuple[list[tuple[Use, Any]], ...] = ([], [], [])
        for use in forward:
            impl = impls.get(id(use.obj))
            if impl is not None:
                band = _BEFORE if impl.tryfirst else _AFTER if impl.trylast else _AMONG
                bands[band].append((use, _adapt(impl, hook)))
        if hook == "post_response":
            for band in bands:
                band.reverse()
        return [*bands[_BEFORE], *bands[_AMONG], *bands[_AFTER]]


def _adapt(impl: Any, hook: str) -> Any:
    """Call hook implementations positionally; pluggy lets an impl take fewer arguments."""
    fn = impl.function
    spec_args = SPEC_ARGS[hook]
    if tuple(impl.argnames) == spec_args:
        return fn
    wanted = impl.argnames
    if hook not in ASYNC_HOOKS:
        return lambda *args: fn(**{n: a for n, a in zip(spec_args, args) if n in wanted})

    async def call(*args: Any) -> Any:
        return await fn(**{n: a for n, a in zip(spec_args, args) if n in wanted})

    return call


def _timed(name: str, phase: str, fn: Any) -> Any:
    """Record ``(plugin, phase, start, end)`` (``time.perf_counter``) in ``ctx.hook_timings`` when it is a list."""

    async def call(ctx: Context, *rest: Any) -> Any:
        timings = ctx.hook_timings
        if timings is None:
            return await fn(ctx, *rest)
        start = time.perf_counter()
        try:
            return await fn(ctx, *rest)
        finally:
            timings.append((name, phase, start, time.perf_counter()))

    return call
