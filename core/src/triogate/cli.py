"""The ``triogate`` command: run, check, init, plugins, routes, schema, reload.

Config errors print every problem with its file and key path and exit 2,
never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_CONFIG = 2


def _print_errors(exc: Any) -> None:
    print(f"triogate: invalid configuration ({len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''}):",
          file=sys.stderr)
    for e in exc.errors:
        print(f"  {exc.source}: {e}", file=sys.stderr)


def _load(path: str) -> tuple[Any, Any]:
    """Load and fully validate (plugins included) a config file."""
    from .config import load_config
    from .pipeline import Pipeline
    from .plugins import PluginRegistry
    from .upstream import HTTPClient

    registry = PluginRegistry()
    cfg = load_config(path)
    Pipeline(cfg, registry, HTTPClient())  # builds every plugin instance: validates plugin configs
    return cfg, registry


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_check(args: argparse.Namespace) -> int:
    from .config import ConfigError

    try:
        cfg, _ = _load(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    print(f"{args.config}: ok ({len(cfg.routes)} routes, {len(cfg.upstreams)} upstreams)")
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .pipeline import Pipeline
    from .plugins import PluginRegistry
    from .upstream import HTTPClient

    try:
        from .config import load_config

        pipeline = Pipeline(load_config(args.config), PluginRegistry(), HTTPClient())
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    rows = pipeline.router.table()
    for row in rows:
        route = next(r for r in pipeline.router.routes if r.name == row["route"])
        row["plugins"] = route.chain.order
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'ROUTE':<16} {'MATCH':<6} {'PATH':<28} {'METHODS':<14} {'HOSTS':<20} {'UPSTREAM':<12} PLUGINS")
    for r in rows:
        print(f"{r['route']:<16} {r['match']:<6} {r['path']:<28} {','.join(r['methods']) or '*':<14} "
              f"{','.join(r['hosts']) or '*':<20} {r['upstream'] or '-':<12} {','.join(r['plugins']) or '-'}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import PluginRegistry, plugin_summary

    registry = PluginRegistry()
    infos = [plugin_summary(i) for i in sorted(registry.infos.values(), key=lambda i: i.name)]
    if args.json:
        print(json.dumps(infos, indent=2, default=str))
        return 0
    if not infos:
        print("no plugins installed")
        return 0
    for info in infos:
        if "error" in info:
            print(f"{info['name']:<24} {info['distribution'] or '?'} {info['version'] or ''}  ERROR: {info['error']}")
            continue
        print(f"{info['name']:<24} {info['distribution'] or '?'} {info['version'] or '':<10} "
              f"priority={info['priority']:<5} hooks={','.join(info['hooks'])}")
        if args.verbose:
            for field in info["config"]:
                print(f"    {field['name']:<24} {field['type']:<28} default={field['default']!r}  {field['description']}")
    return 1 if any("error" in i for i in infos) and args.strict else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .plugins import PluginRegistry
    from .schema import config_schema

    print(json.dumps(config_schema(PluginRegistry()), indent=2, default=str))
    return 0


STARTER: dict[str, Any] = {
    "gateway": {"listen": ["127.0.0.1:8000"], "workers": 1},
    "upstreams": {"example": {"targets": [{"url": "http://127.0.0.1:9101", "weight": 1}],
                              "balancer": "round-robin"}},
    "routes": {"example": {"paths": ["/api"], "upstream": "example", "strip_prefix": "/api"}},
}


def cmd_init(args: argparse.Namespace) -> int:
    import tomli_w

    path = Path(args.output)
    if path.exists() and not args.force:
        print(f"triogate: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    text = "# triogate configuration: see `triogate schema` for every key.\n" + tomli_w.dumps(STARTER)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _pid_file(config_path: str) -> Path:
    return Path(config_path).resolve().with_name("." + Path(config_path).name + ".pid")


def cmd_reload(args: argparse.Namespace) -> int:
    pidfile = Path(args.pid_file) if args.pid_file else _pid_file(args.config)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        print(f"triogate: no running gateway found (no pid in {pidfile})", file=sys.stderr)
        return 1
    from .config import ConfigError

    try:
        _load(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        print("triogate: not reloading; the running config keeps serving", file=sys.stderr)
        return EXIT_CONFIG
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"triogate: process {pid} is not running", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to {pid}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    _setup_logging(cfg.gateway.log_level)
    workers = args.workers or cfg.gateway.workers
    if workers > 1:
        from .supervisor import supervise

        return supervise(args.config, cfg, workers, _pid_file(args.config))
    return run_single(args.config, cfg, pid_file=_pid_file(args.config))


def run_single(config_path: str, cfg: Any, *, pid_file: Path | None = None, sockets: list[Any] | None = None,
               worker: int = 0) -> int:
    """Run one gateway process until SIGINT/SIGTERM; SIGHUP reloads the config file."""
    import trio

    from .app import Gateway, serve
    from .config import ConfigError

    try:
        gateway = Gateway(cfg, config_path=config_path, worker=worker)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    log = logging.getLogger("triogate")

    async def main() -> None:
        stop = trio.Event()

        async def signals(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as sigs:
                task_status.started()
                async for sig in sigs:
                    if sig == signal.SIGHUP:
                        errors = await gateway.reload()
                        if errors:
                            for e in errors:
                                log.error("reload: %s", e)
                    else:
                        log.info("shutting down (draining in-flight requests)")
                        stop.set()

        async def serving(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await serve(gateway, shutdown_trigger=stop.wait, task_status=task_status, sockets=sockets)
            nursery.cancel_scope.cancel()  # drained: stop the signal task too

        async with trio.open_nursery() as nursery:
            await nursery.start(signals)
            bound = await nursery.start(serving)
            if pid_file is not None and worker == 0:
                pid_file.write_text(str(os.getpid()))
            for host, port in bound:
                log.info("listening on http://%s:%d (worker %d, pid %d)", host, port, worker, os.getpid())

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    finally:
        if pid_file is not None and worker == 0:
            try:
                pid_file.unlink()
            except OSError:
                pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="triogate", description="An API gateway for Python people.")
    p.add_argument("--version", action="version", version=f"triogate {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("-c", "--config", default=os.environ.get("TRIOGATE_CONFIG", "gateway.toml"),
                        help="config file (default: gateway.toml, or $TRIOGATE_CONFIG)")
        return sp

    r = with_config(sub.add_parser("run", help="serve the gateway"))
    r.add_argument("--workers", type=int, default=0, help="override [gateway] workers")
    r.set_defaults(func=cmd_run)
    with_config(sub.add_parser("check", help="validate a config file")).set_defaults(func=cmd_check)
    i = sub.add_parser("init", help="write a starter config")
    i.add_argument("-o", "--output", default="gateway.toml")
    i.add_argument("--force", action="store_true")
    i.set_defaults(func=cmd_init)
    pl = sub.add_parser("plugins", help="list installed plugins")
    pl.add_argument("-v", "--verbose", action="store_true", help="show config fields too")
    pl.add_argument("--json", action="store_true")
    pl.add_argument("--strict", action="store_true", help="exit 1 if a plugin cannot be loaded")
    pl.set_defaults(func=cmd_plugins)
    ro = with_config(sub.add_parser("routes", help="show the route table in match order"))
    ro.add_argument("--json", action="store_true")
    ro.set_defaults(func=cmd_routes)
    sub.add_parser("schema", help="print the JSON Schema of gateway.toml").set_defaults(func=cmd_schema)
    rl = with_config(sub.add_parser("reload", help="validate the file, then make the running gateway reload it"))
    rl.add_argument("--pid-file", help="pid file of the running gateway")
    rl.set_defaults(func=cmd_reload)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
