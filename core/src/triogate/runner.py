"""Running one gateway process: load and check a config, serve it until a stop signal.

``triogate run`` (:mod:`triogate.cli`) and every worker of the supervisor
(:mod:`triogate.supervisor`) go through here, so both start and stop the same way.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from .app import Gateway, StartupError
from .config import Config, ConfigError, load_config
from .configwatch import POLL_INTERVAL, ConfigWatcher
from .pipeline import Pipeline
from .plugins import PluginRegistry
from .reloadstate import ReloadState, new_reload_id, worker_entry
from .serving import serve
from .upstream import HTTPClient

__all__ = ["EXIT_CONFIG", "EXIT_STARTUP", "count", "default_pid_file", "load_checked", "print_errors", "run_single"]

EXIT_CONFIG = 2
EXIT_STARTUP = 1

log = logging.getLogger("triogate")


def count(n: int, noun: str) -> str:
    """``1 route``, ``2 routes``, ``0 routes``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def print_errors(exc: ConfigError) -> None:
    """Every config error on stderr, one per line with its file (never a traceback)."""
    print(f"triogate: invalid configuration ({count(len(exc.errors), 'error')}):", file=sys.stderr)
    for e in exc.errors:
        print(f"  {exc.source}: {e}", file=sys.stderr)


def load_checked(path: str, registry: PluginRegistry | None = None) -> tuple[Config, PluginRegistry, Pipeline]:
    """Load and fully validate a config file: every table, every plugin config, plugin
    construction and hook modules. Returns ``(config, registry, pipeline)``; raises ConfigError."""
    registry = registry if registry is not None else PluginRegistry()
    cfg = load_config(path, registry=registry)  # every error at once, plugin tables included
    pipeline = Pipeline(cfg, registry, HTTPClient())  # plugins' own checks, hook modules
    return cfg, registry, pipeline


def default_pid_file(config_path: str) -> Path:
    """Where ``run`` records its pid for ``reload``: ``.<config name>.pid`` next to the config."""
    p = Path(config_path).resolve()
    return p.with_name("." + p.name + ".pid")


def _leaf(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``kinds`` inside (possibly nested) exception groups."""
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = _leaf(sub, kinds)
            if found is not None:
                return found
    return None


def _freeze_startup_heap() -> None:
    """Move what startup built (modules, config, plugins: ~90k objects) out of the collector's sight.

    A full collection walked them all: a 20-25 ms stop of every connection a few times a minute
    under load (measured with ``gc.callbacks``, issue 12). Frozen objects are never collected, so
    the first config's cycles outlive a reload: one generation's worth, once; later ones are not
    frozen and are collected as usual.
    """
    gc.collect()
    gc.freeze()


def run_single(
    config_path: str,
    cfg: Any,
    *,
    registry: Any = None,
    pid_file: Path | None = None,
    sockets: list[Any] | None = None,
    worker: int = 0,
    ready_fd: int | None = None,
    reload_state: ReloadState | None = None,
    watch: bool = False,
) -> int:
    """Run one gateway process until SIGINT/SIGTERM (drain, then exit 0); SIGHUP reloads the file.

    Each reload's outcome goes to the reload state files next to the pid file
    (:mod:`triogate.reloadstate`), which ``triogate reload`` waits for. ``watch`` reloads when the
    config file or a file it references changes (:mod:`triogate.configwatch`).

    ``sockets``/``worker``/``ready_fd``/``reload_state`` are for the supervisor's workers: inherited
    listening sockets, the worker index, a pipe to report "listening" on, and where to report each
    reload's outcome (the supervisor watches the files itself). Call it from the
    main thread of a process that exits afterwards: SIGINT and SIGTERM stay ignored once it
    returns, so a late duplicate stop signal cannot kill a process that drained cleanly.
    """
    try:
        gateway = Gateway(cfg, registry=registry, config_path=config_path, worker=worker)
    except ConfigError as exc:
        print_errors(exc)
        return EXIT_CONFIG
    supervised = sockets is not None
    state = reload_state if reload_state is not None else (ReloadState(pid_file) if pid_file is not None else None)
    gateway.reload_state = state
    watcher = ConfigWatcher(config_path, cfg) if watch and not supervised else None

    async def main() -> None:
        stop = trio.Event()

        async def reload(rid: str) -> None:
            errors = await gateway.reload()  # a refusal is logged there, one line per error
            if watcher is not None:
                watcher.follow(gateway.config)
            if state is None:
                return
            entry = worker_entry(worker, errors, gateway.version, rid)
            try:
                if supervised:
                    state.write_worker(worker, entry)  # the supervisor gathers every worker's
                else:
                    state.write_outcome(rid, [entry])
            except OSError as exc:
                log.error("cannot write the reload outcome next to %s: %s", state.pid_file, exc)

        def reload_id() -> str:
            if state is None:
                return new_reload_id()
            return state.fanned_out_id() if supervised else state.take_request()

        async def watching() -> None:
            assert watcher is not None
            log.info("watching %s for changes", ", ".join(str(p) for p in watcher.paths))
            while True:
                await trio.sleep(POLL_INTERVAL)
                if watcher.poll(trio.current_time()):
                    log.info("config watch: a watched file changed; reloading %s", config_path)
                    await reload(new_reload_id())

        async def signals(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as sigs:
                task_status.started()
                async for sig in sigs:
                    if sig == signal.SIGHUP:
                        log.info("SIGHUP: reloading %s", config_path)
                        nursery.start_soon(reload, reload_id())
                    elif not stop.is_set():
                        log.info("shutting down (draining in-flight requests)")
                        stop.set()

        async def serving(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await serve(gateway, shutdown_trigger=stop.wait, task_status=task_status, sockets=sockets)
            nursery.cancel_scope.cancel()  # drained: stop the signal task too

        async with trio.open_nursery() as nursery:
            await nursery.start(signals)
            bound = await nursery.start(serving)
            _freeze_startup_heap()
            if pid_file is not None:
                pid_file.write_text(f"{os.getpid()}\n")
                if state is not None:
                    state.write_source(config_path)
            for (host, port), lst in zip(bound, cfg.gateway.listen, strict=True):  # bound in listen order
                log.info("listening on %s://%s:%d (worker %d, pid %d)", "https" if lst.tls_cert else "http", host,
                         port, worker, os.getpid())
            if ready_fd is not None:
                os.write(ready_fd, b"1")
                os.close(ready_fd)
            if watcher is not None:
                nursery.start_soon(watching)

    # Stop signals are trio's while it runs (the receiver in main()); it puts back what it found
    # on exit. Make that "ignore", so a stop signal arriving after the drain (a second SIGTERM: one
    # sent to the process group, one forwarded by a parent like the demo runner) cannot turn a clean
    # exit into "killed by SIGTERM" (exit status -15 for the parent).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        found = _leaf(exc, (StartupError, OSError))
        if found is None:
            raise
        if isinstance(found, StartupError):
            print(f"triogate: {found}", file=sys.stderr)
        else:
            where = ", ".join(lst.address for lst in cfg.gateway.listen)
            print(f"triogate: cannot listen on {where}: {found.strerror or found}", file=sys.stderr)
        return EXIT_STARTUP
    finally:
        if pid_file is not None:
            try:
                if pid_file.read_text().strip() == str(os.getpid()):
                    pid_file.unlink()
                    if state is not None:
                        state.cleanup()
            except OSError:
                pass
    return 0
