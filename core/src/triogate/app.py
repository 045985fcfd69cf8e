"""The running gateway: the current pipeline, atomic reloads, lifecycle hooks, serving.

Each loaded config ("generation") runs in its own nursery with its plugins'
background tasks. A reload builds and starts the new generation fully, swaps it
in, then retires the old one once its in-flight requests finish (bounded by
the drain timeout). An invalid file is rejected and the old config keeps serving.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from .accesslog import AccessLog
from .config import Config, ConfigError, load_config
from .context import Context
from .messages import Request, Response
from .pipeline import Pipeline
from .plugins import PluginRegistry
from .upstream import HTTPClient
from .upstream.health import run_health_checks

__all__ = ["Gateway", "serve"]

log = logging.getLogger("triogate")


class _Generation:
    __slots__ = ("pipeline", "inflight", "idle", "retired", "cancel_scope", "done")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.inflight = 0
        self.idle = trio.Event()
        self.retired = trio.Event()
        self.done = trio.Event()
        self.cancel_scope: trio.CancelScope | None = None


class Gateway:
    """Holds the current pipeline; front-ends call :meth:`handle` then :meth:`finish`."""

    def __init__(
        self,
        config: Config,
        *,
        registry: PluginRegistry | None = None,
        config_path: str | Path | None = None,
        worker: int = 0,
    ) -> None:
        self.registry = registry if registry is not None else PluginRegistry()
        self.http = HTTPClient()
        self.config_path = Path(config_path) if config_path else None
        self.worker = worker
        self.version = 1
        self.extras: dict[str, Any] = {}
        self._gen = _Generation(Pipeline(config, self.registry, self.http, version=1, worker=worker, extras=self.extras))
        self.access_log = AccessLog(config.gateway.access_log)
        self.started_at = time.time()
        self.reloads = {"ok": 0, "failed": 0}
        self._nursery: trio.Nursery | None = None
        self.draining = False
        self._reload_lock = trio.Lock()

    @property
    def pipeline(self) -> Pipeline:
        return self._gen.pipeline

    @property
    def config(self) -> Config:
        return self._gen.pipeline.config

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nursery: trio.Nursery) -> None:
        """Run startup hooks of the first config; background tasks live in ``nursery``."""
        self._nursery = nursery
        await nursery.start(self._run_generation, self._gen)

    async def _run_generation(self, gen: _Generation, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        pipeline = gen.pipeline
        services = pipeline.services
        try:
            async with trio.open_nursery() as nursery:
                gen.cancel_scope = nursery.cancel_scope
                services.nursery = nursery
                for up in pipeline.upstreams.values():
                    if up.cfg.health_check.path:
                        nursery.start_soon(run_health_checks, up.targets, up.cfg.health_check)
                for impl in reversed(pipeline.pm.hook.startup.get_hookimpls()):
                    kwargs = {"gateway": services, "nursery": nursery}
                    await impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
                task_status.started()
                await gen.retired.wait()
                drain = pipeline.config.gateway.timeouts.drain
                with trio.move_on_after(drain):
                    while gen.inflight:
                        await gen.idle.wait()
                        gen.idle = trio.Event()
                with trio.move_on_after(min(drain, 10.0)) as cs:
                    cs.shield = True
                    for impl in reversed(pipeline.pm.hook.shutdown.get_hookimpls()):
                        try:
                            await impl.function(**{k: v for k, v in {"gateway": services}.items() if k in impl.argnames})
                        except Exception:  # noqa: BLE001 - one plugin's shutdown must not stop the others
                            log.exception("plugin shutdown hook failed")
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for up in pipeline.upstreams.values():
                    await up.aclose()
            gen.done.set()

    async def reload(self, config: Config | None = None) -> list[str]:
        """Load ``config`` (or re-read the config file); return errors, empty on success."""
        async with self._reload_lock:
            try:
                if config is None:
                    if self.config_path is None:
                        return ["no config file to reload from"]
                    config = load_config(self.config_path)
                pipeline = Pipeline(config, self.registry, self.http, version=self.version + 1,
                                    worker=self.worker, extras=self.extras)
            except ConfigError as exc:
                self.reloads["failed"] += 1
                log.error("reload rejected, old config keeps serving:\n%s", exc)
                return [f"{exc.source}: {e}" for e in exc.errors]
            gen = _Generation(pipeline)
            assert self._nursery is not None, "Gateway.start() was not called"
            try:
                await self._nursery.start(self._run_generation, gen)
            except Exception as exc:  # noqa: BLE001 - a plugin failing to start rejects the reload
                self.reloads["failed"] += 1
                log.exception("reload rejected: startup failed")
                return [f"startup failed: {type(exc).__name__}: {exc}"]
            old, self._gen = self._gen, gen
            self.version += 1
            self.reloads["ok"] += 1
            old.retired.set()
            if old.inflight == 0:
                old.idle.set()
            log.info("config reloaded (version %d)", self.version)
            return []

    async def aclose(self) -> None:
        """Retire the current config: wait for in-flight requests (drain), run shutdown hooks."""
        self.draining = True
        gen = self._gen
        gen.retired.set()
        if gen.inflight == 0:
            gen.idle.set()
        await gen.done.wait()
        await self.http.aclose()
        self.access_log.close()

    # ------------------------------------------------------------------ requests

    async def handle(self, request: Request) -> tuple[Context, Response]:
        gen = self._gen
        gen.inflight += 1
        pipeline = gen.pipeline
        ctx = pipeline.context(request)
        ctx.state["__gen"] = gen
        try:
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
        gen: _Generation = ctx.state.pop("__gen")
        try:
            route = ctx.route
            chain = route.chain if route is not None else gen.pipeline.global_chain
            for name, fn in chain.log:
                try:
                    await fn(ctx)
                except Exception:  # noqa: BLE001
                    log.exception("plugin %s failed in log [request_id=%s]", name, ctx.request_id)
            if self.access_log.enabled:
                self.access_log.write(ctx)
        finally:
            self._done(gen)


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
    from .admin import start_admin
    from .listeners import open_listeners, serve_listeners

    cfg = gateway.config
    async with trio.open_nursery() as nursery:
        await gateway.start(nursery)
        listeners = await open_listeners(cfg.gateway.listen, sockets=sockets)
        servers = await serve_listeners(nursery, gateway, listeners)
        gateway.admin = await start_admin(nursery, gateway, servers, supervised=sockets is not None)
        task_status.started([lst.bound for lst in listeners])
        if shutdown_trigger is None:
            await trio.sleep(math.inf)
        else:
            await shutdown_trigger()
        for server in servers:
            server.stop_accepting()
        with trio.move_on_after(cfg.gateway.timeouts.drain):
            for server in servers:
                await server.drain()
        for server in servers:
            server.close_all()
        await gateway.aclose()
        nursery.cancel_scope.cancel()
