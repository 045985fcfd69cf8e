"""The running gateway: the current pipeline, atomic reloads, lifecycle hooks.

Each loaded config ("generation") runs in its own nursery with its plugins'
background tasks. A reload builds and starts the new generation fully, swaps it
in, then retires the old one once its in-flight requests finish (bounded by
the drain timeout). An invalid file is rejected and the old config keeps serving.
Serving it on sockets is :func:`triogate.serving.serve`'s job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from .accesslog import FLUSH_INTERVAL, AccessLog
from .config import Config, ConfigError, load_config
from .context import Context, GatewayServices
from .messages import Request, Response
from .pipeline import Pipeline
from .plugins import PluginRegistry
from .resources import SharedResources
from .routestats import RouteStats
from .runtime import Runtime
from .upstream import HTTPClient, Upstream

__all__ = ["Gateway", "StartupError"]

log = logging.getLogger("triogate")


class StartupError(Exception):
    """A plugin's startup hook failed or overran ``timeouts.startup``; names the plugin."""

    def __init__(self, plugin: str, detail: str) -> None:
        super().__init__(f"plugin {plugin} failed at startup: {detail}")
        self.plugin = plugin
        self.detail = detail


class _GuardedNursery:
    """What plugins get as ``gateway.nursery``: a background task that crashes is
    logged with its plugin's name instead of taking the gateway down."""

    def __init__(self, nursery: trio.Nursery, label: str) -> None:
        self._nursery = nursery
        self._label = label
        self.cancel_scope = nursery.cancel_scope

    @property
    def child_tasks(self) -> Any:
        return self._nursery.child_tasks

    def _guard(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        label = self._label

        async def guarded(*args: Any, **kwargs: Any) -> None:
            try:
                await fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s of %s crashed", getattr(fn, "__qualname__", fn), label)

        return guarded

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: Any = None) -> None:
        self._nursery.start_soon(self._guard(fn), *args, name=name or fn)

    async def start(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: Any = None) -> Any:
        label = self._label

        async def guarded(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            started = False

            class _Status:
                def started(self, value: Any = None) -> None:
                    nonlocal started
                    started = True
                    task_status.started(value)

            try:
                await fn(*args, task_status=_Status())
            except Exception:
                if not started:
                    raise  # the caller (a startup hook) sees it
                log.exception("background task %s of %s crashed", getattr(fn, "__qualname__", fn), label)

        return await self._nursery.start(guarded, name=name or fn)


class _Generation:
    __slots__ = ("cancel_scope", "done", "idle", "inflight", "pipeline", "retired")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.inflight = 0
        self.idle = trio.Event()
        self.retired = trio.Event()
        self.done = trio.Event()
        self.cancel_scope: trio.CancelScope | None = None

    def retire(self) -> None:
        self.retired.set()
        if self.inflight == 0:
            self.idle.set()


# settings that the listeners read once: a reload cannot change them (limits and client
# timeouts can: each connection uses the ones in force when it was accepted)
_RESTART_ONLY = ("listen", "workers", "http1_parser", "watch")


def _log_rejected(errors: list[str]) -> None:
    """A refused reload: one log record per error, each on one line (line-based log shipping).

    The caller gets the errors too (``reload()`` returns them) and must not log them again.
    """
    n = len(errors)
    for i, e in enumerate(errors, 1):
        log.error("reload rejected, the running config keeps serving (%d/%d): %s", i, n, " ".join(e.splitlines()))


class Gateway:
    """Holds the current pipeline; front-ends call :meth:`handle` then :meth:`finish`.

    Each loaded config is a *generation*. :meth:`reload` builds and starts a new one
    fully (plugins instantiated, startup hooks done) before swapping it in; requests
    already running keep their generation, which is retired (drain, shutdown hooks,
    upstream pools closed) once they finish.
    """

    def __init__(
        self,
        config: Config,
        *,
        registry: PluginRegistry | None = None,
        config_path: str | Path | None = None,
        worker: int = 0,
    ) -> None:
        self.registry = registry if registry is not None else PluginRegistry()
        self.http = HTTPClient(http1_parser=config.gateway.http1_parser)
        self.config_path = Path(config_path) if config_path else None
        self.worker = worker
        self.version = 1
        self.started_at = time.time()
        self.reloads = {"ok": 0, "failed": 0}
        #: the last reload's outcome (``{"time", "ok", "errors", "config_version"}``), for ``/status``
        self.last_reload: dict[str, Any] | None = None
        #: per-route requests, errors and latency histogram, across reloads (``GET /stats``)
        self.route_stats = RouteStats()
        #: where reload outcomes go (:class:`~triogate.reloadstate.ReloadState`, set by the runner): the
        #: admin API of a supervised worker waits there for every worker's outcome
        self.reload_state: Any = None
        self.draining = False
        self.runtime = Runtime(self)
        self.process_resources = SharedResources("process")  # ``services.shared(..., scope="process")``
        self._gen = _Generation(self._pipeline(config, 1))
        for msg in self._gen.pipeline.skipped:
            log.error("%s", msg)
        for msg in self._gen.pipeline.warnings:
            log.warning("%s", msg)
        self.access_log = AccessLog(config.gateway.access_log)
        self._nursery: trio.Nursery | None = None
        self.draining = False
        self._closed = False
        self._reload_lock = trio.Lock()

    def _pipeline(self, config: Config, version: int) -> Pipeline:
        return Pipeline(config, self.registry, self.http, version=version, worker=self.worker,
                        process=self.process_resources, runtime=self.runtime)

    @property
    def pipeline(self) -> Pipeline:
        return self._gen.pipeline

    @property
    def services(self) -> GatewayServices:
        """What the plugins of the config now serving got (``instances()``, ``shared()``, ``runtime``)."""
        return self._gen.pipeline.services

    @property
    def in_flight(self) -> int:
        """Requests running on the config now serving."""
        return self._gen.inflight

    @property
    def upstreams(self) -> dict[str, Upstream]:
        """The upstreams of the config now serving."""
        return self._gen.pipeline.upstreams

    @property
    def config(self) -> Config:
        return self._gen.pipeline.config

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nursery: trio.Nursery) -> None:
        """Run the startup hooks of the first config; background tasks live in ``nursery``.

        Raises :class:`StartupError` naming the plugin when a startup hook fails.
        """
        self._nursery = nursery
        self.process_resources.bind(nursery)
        await nursery.start(self._run_generation, self._gen)
        nursery.start_soon(self._flush_access_log, name="access log flush")

    async def _flush_access_log(self) -> None:
        """Access-log lines are buffered: write them out within FLUSH_INTERVAL even when traffic stops."""
        while not self._closed:
            await trio.sleep(FLUSH_INTERVAL)
            self.access_log.flush()

    async def _run_generation(self, gen: _Generation, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        pipeline = gen.pipeline
        services = pipeline.services
        timeouts = pipeline.config.gateway.timeouts
        failure: StartupError | None = None
        try:
            async with trio.open_nursery() as nursery:
                gen.cancel_scope = nursery.cancel_scope
                services.nursery = _GuardedNursery(nursery, f"config version {services.version}")  # type: ignore[assignment]
                services.resources.bind(nursery)
                # health checks, and DNS discovery's first resolution before this config serves
                # (all upstreams at once: a slow resolver costs its timeout once, not per upstream)
                async with trio.open_nursery() as starting:
                    for up in pipeline.upstreams.values():
                        if up.cfg.health_check.path or up.discovery is not None:
                            starting.start_soon(nursery.start, up.run)
                try:
                    await self._startup(pipeline, nursery)
                except StartupError as exc:
                    failure = exc
                    await services.resources.aclose(timeouts.shutdown)
                    nursery.cancel_scope.cancel()
                else:
                    task_status.started()
                    await gen.retired.wait()
                    with trio.move_on_after(timeouts.drain):
                        while gen.inflight:
                            await gen.idle.wait()
                            gen.idle = trio.Event()
                    await self._shutdown(pipeline, pipeline.hooks.shutdown)
                    await services.resources.aclose(timeouts.shutdown)
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for up in pipeline.upstreams.values():
                    await up.aclose()
            gen.done.set()
        if failure is not None:
            raise failure

    async def _startup(self, pipeline: Pipeline, nursery: trio.Nursery) -> None:
        services = pipeline.services
        limit = pipeline.config.gateway.timeouts.startup
        started: list[tuple[str, Any]] = []
        for label, startup, shutdown in pipeline.hooks.startup:
            guarded = _GuardedNursery(nursery, f"plugin {label}")
            try:
                with trio.fail_after(limit):
                    await startup(services, guarded)
            except trio.TooSlowError:
                error = StartupError(label, f"startup hook did not finish within {limit} s (timeouts.startup)")
            except Exception as exc:
                # a refused reload is logged by _reload as one line per error (line-based log shipping):
                # its traceback only at debug; the first start, which ends the process, keeps it at error
                reloading = pipeline is not self._gen.pipeline
                log.log(logging.DEBUG if reloading else logging.ERROR, "plugin %s failed at startup", label,
                        exc_info=exc)
                error = StartupError(label, f"{type(exc).__name__}: {exc}")
            else:
                if shutdown is not None:
                    started.append((label, shutdown))
                continue
            # undo what already started, then fail
            await self._shutdown(pipeline, started)
            raise error

    async def _shutdown(self, pipeline: Pipeline, hooks: list[tuple[str, Any]]) -> None:
        """Run shutdown hooks concurrently, bounded by ``timeouts.shutdown``; failures are logged by name."""
        if not hooks:
            return
        services = pipeline.services
        limit = pipeline.config.gateway.timeouts.shutdown
        pending = {label for label, _ in hooks}

        async def one(label: str, shutdown: Any) -> None:
            try:
                await shutdown(services)
            except Exception:
                log.exception("plugin %s failed in shutdown", label)
            pending.discard(label)

        with trio.CancelScope(shield=True):
            with trio.move_on_after(limit):
                async with trio.open_nursery() as nursery:
                    for label, shutdown in hooks:
                        nursery.start_soon(one, label, shutdown)
        for label in sorted(pending):
            log.error("plugin %s: shutdown hook cancelled after %s s (timeouts.shutdown)", label, limit)

    async def reload(self, config: Config | None = None) -> list[str]:
        """Load ``config`` (or re-read the config file) and swap it in; return errors, empty on success.

        The new config is validated fully and started (startup hooks) before the swap;
        on any error the current config keeps serving and nothing changes.
        """
        errors = await self._reload(config)
        self.last_reload = {"time": time.time(), "ok": not errors, "errors": [" ".join(e.splitlines()) for e in errors],
                            "config_version": self.version}
        return errors

    async def _reload(self, config: Config | None) -> list[str]:
        async with self._reload_lock:
            try:
                if config is None:
                    if self.config_path is None:
                        return ["no config file to reload from"]
                    config = load_config(self.config_path, registry=self.registry)
                pipeline = self._pipeline(config, self.version + 1)
            except ConfigError as exc:
                self.reloads["failed"] += 1
                errors = [f"{exc.source}: {e}" for e in exc.errors]
                _log_rejected(errors)
                return errors
            except Exception as exc:
                self.reloads["failed"] += 1
                log.exception("reload rejected, the running config keeps serving")
                return [f"reload failed: {type(exc).__name__}: {exc}"]
            for msg in pipeline.skipped:
                log.error("%s", msg)
            for msg in pipeline.warnings:
                log.warning("%s", msg)
            gen = _Generation(pipeline)
            assert self._nursery is not None, "Gateway.start() was not called"
            try:
                await self._nursery.start(self._run_generation, gen)
            except StartupError as exc:
                self.reloads["failed"] += 1
                _log_rejected([str(exc)])
                return [str(exc)]
            old, self._gen = self._gen, gen
            self.version += 1
            self.reloads["ok"] += 1
            old.retire()
            self._after_reload(old.pipeline.config, config)
            log.info("config reloaded (version %d)", self.version)
            return []

    def _after_reload(self, old: Config, new: Config) -> None:
        for key in _RESTART_ONLY:
            if getattr(old.gateway, key) != getattr(new.gateway, key):
                log.warning("gateway.%s changed: it takes effect after a restart, not a reload", key)
        # reopen the access log: picks up a new destination, and a rotated file (logrotate + SIGHUP);
        # closing flushes the old one's buffered lines to the old file first
        self.access_log.close()
        self.access_log = AccessLog(new.gateway.access_log)

    async def aclose(self) -> None:
        """Retire the current config: wait for in-flight requests (drain), run shutdown hooks."""
        self.draining = True
        gen = self._gen
        gen.retire()
        await gen.done.wait()
        await self.process_resources.aclose(self.config.gateway.timeouts.shutdown)
        await self.http.aclose()
        self.access_log.close()  # flushes the buffered lines
        self._closed = True

    # ------------------------------------------------------------------ requests

    async def handle(self, request: Request) -> tuple[Context, Response]:
        """Run the pipeline of the current config; the request keeps that config until :meth:`finish`."""
        gen = self._gen
        gen.inflight += 1
        pipeline = gen.pipeline
        try:
            ctx = pipeline.context(request)
            ctx.generation = gen
            return ctx, await pipeline.handle(ctx)
        except BaseException:
            self._done(gen)
            raise

    def _done(self, gen: _Generation) -> None:
        gen.inflight -= 1
        if gen.inflight == 0 and gen.retired.is_set():
            gen.idle.set()

    async def finish(self, ctx: Context) -> None:
        """After the response is sent: log hooks, access log, in-flight accounting."""
        gen: _Generation = ctx.generation
        try:
            ctx.bytes_in = ctx.body_in.received
            route = ctx.route
            self.route_stats.record(route.name if route is not None else None, ctx.status, ctx.elapsed)
            chain = route.chain if route is not None else gen.pipeline.global_chain
            for name, fn in chain.log:
                try:
                    await fn(ctx)
                except Exception:
                    log.exception("plugin %s failed in log [request_id=%s]", name, ctx.request_id)
            if self.access_log.enabled:
                self.access_log.write(ctx)
        finally:
            self._done(gen)
