"""The ``triogate`` command: run, check, init, plugins, routes, schema, reload.

Config errors print every problem with its file and key path and exit 2, never
with a traceback; other start-up failures (a port in use, a plugin's startup hook)
print one clear line and exit 1.
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

__all__ = ["EXIT_CONFIG", "EXIT_STARTUP", "load_checked", "main", "run_single"]

EXIT_CONFIG = 2
EXIT_STARTUP = 1

log = logging.getLogger("triogate")


def _count(n: int, noun: str) -> str:
    """``1 route``, ``2 routes``, ``0 routes``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _print_errors(exc: Any) -> None:
    print(f"triogate: invalid configuration ({_count(len(exc.errors), 'error')}):", file=sys.stderr)
    for e in exc.errors:
        print(f"  {exc.source}: {e}", file=sys.stderr)


def load_checked(path: str, registry: Any = None) -> tuple[Any, Any, Any]:
    """Load and fully validate a config file: every table, every plugin config, plugin
    construction and hook modules. Returns ``(config, registry, pipeline)``; raises ConfigError."""
    from .config import load_config
    from .pipeline import Pipeline
    from .plugins import PluginRegistry
    from .upstream import HTTPClient

    registry = registry if registry is not None else PluginRegistry()
    cfg = load_config(path, registry=registry)  # every error at once, plugin tables included
    pipeline = Pipeline(cfg, registry, HTTPClient())  # plugins' own checks, hook modules
    return cfg, registry, pipeline


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _warn_skipped(pipeline: Any) -> None:
    """Plugins left out (plugins_on_error = "skip") and deprecated keys in use."""
    for msg in [*pipeline.skipped, *pipeline.warnings]:
        print(f"triogate: warning: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def cmd_check(args: argparse.Namespace) -> int:
    from .config import ConfigError

    try:
        cfg, _, pipeline = load_checked(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    _warn_skipped(pipeline)
    print(f"{args.config}: ok ({_count(len(cfg.routes), 'route')}, {_count(len(cfg.upstreams), 'upstream')},"
          f" {_count(len(pipeline.instances), 'plugin instance')})")
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    from .config import ConfigError

    try:
        _, _, pipeline = load_checked(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    rows = pipeline.router.table()
    routes = {r.name: r for r in pipeline.router.routes}
    for row in rows:
        row["plugins"] = routes[row["route"]].chain.order
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no routes: every request gets 404")
        return 0
    header = ("ROUTE", "MATCH", "PATH", "METHODS", "HOSTS", "UPSTREAM", "PLUGINS (run order)")
    table = [header] + [(
        r["route"], r["match"], r["path"], ",".join(r["methods"]) or "*", ",".join(r["hosts"]) or "*",
        r["upstream"] or "-", ",".join(r["plugins"]) or "-",
    ) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import PluginRegistry, plugin_summary

    registry = PluginRegistry()
    infos = [plugin_summary(i) for i in sorted(registry.infos.values(), key=lambda i: i.name)]
    if args.json:
        print(json.dumps(infos, indent=2, default=str))
        return 1 if args.strict and any("error" in i for i in infos) else 0
    if not infos:
        print("no plugins installed")
        return 0
    dists = {i["name"]: f"{i['distribution'] or '?'} {i['version'] or ''}".strip() for i in infos}
    name_w = max(len(i["name"]) for i in infos)  # columns as wide as their longest entry
    dist_w = max(len(d) for d in dists.values())
    prio_w = max((len(str(i["priority"])) for i in infos if "priority" in i), default=0)
    for info in infos:
        lead = f"{info['name']:<{name_w}}  {dists[info['name']]:<{dist_w}}  "
        if "error" in info:
            print(f"{lead}ERROR: {info['error']}")
            continue
        print(f"{lead}priority {info['priority']:<{prio_w}}  {', '.join(info['hooks']) or '-'}")
        if args.verbose:
            print(f"    distribution: {info['distribution'] or '?'}  version: {info['version'] or '?'}")
            print(f"    priority: {info['priority']}  hooks: {', '.join(info['hooks']) or 'none'}")
            if info["config"]:
                print("    config:")
                for field in info["config"]:
                    default = ("required" if field["required"] else "unset" if field["default"] is None
                               else f"default {json.dumps(field['default'], default=str)}")
                    print(f"      {field['name']} ({field['type']}, {default}): {field['description']}")
            else:
                print("    config: none")
    return 1 if args.strict and any("error" in i for i in infos) else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .plugins import PluginRegistry
    from .schema import config_schema

    print(json.dumps(config_schema(PluginRegistry()), indent=2, default=str))
    return 0


STARTER: dict[str, Any] = {
    "gateway": {"listen": ["127.0.0.1:8000"], "workers": 1, "access_log": "-"},
    "upstreams": {"example": {"targets": [{"url": "http://127.0.0.1:9101", "weight": 1}],
                              "balancer": "round-robin"}},
    "routes": {"example": {"paths": ["/api"], "methods": ["GET", "POST"], "upstream": "example",
                           "strip_prefix": "/api"}},
}

#: where a pip user finds the reference (the repository's docs/ is not installed)
CONFIG_DOCS_URL = "https://github.com/triogate/triogate/blob/main/docs/configuration.md"
SCHEMA_FILE = "gateway.schema.json"

STARTER_HEADER = f"""\
#:schema ./{SCHEMA_FILE}
# triogate configuration. Reference: {CONFIG_DOCS_URL}
# The line above points editors (e.g. Even Better TOML) to the JSON Schema `triogate init` wrote next
# to this file; after installing plugins, refresh it: triogate schema > {SCHEMA_FILE}
# `triogate check` validates this file fully. Secrets come from the environment:
# token = "${{MY_TOKEN}}" or "${{MY_TOKEN:-default}}".
#
# Add a plugin to every route:          [plugins.<name>]
# or to one route:                      [routes.example.plugins.<name>]
# See the installed plugins with:       triogate plugins --verbose

"""


def cmd_init(args: argparse.Namespace) -> int:
    import tomli_w

    from .plugins import PluginRegistry
    from .schema import config_schema

    path = Path(args.output)
    if path.exists() and not args.force:
        print(f"triogate: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    path.write_text(STARTER_HEADER + tomli_w.dumps(STARTER), encoding="utf-8")
    schema = path.with_name(SCHEMA_FILE)  # generated, so always refreshed: the #:schema line points here
    schema.write_text(json.dumps(config_schema(PluginRegistry()), indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path} and {schema}; check it with: triogate check -c {path}")
    return 0


def default_pid_file(config_path: str) -> Path:
    """Where ``run`` records its pid for ``reload``: ``.<config name>.pid`` next to the config."""
    p = Path(config_path).resolve()
    return p.with_name("." + p.name + ".pid")


def cmd_reload(args: argparse.Namespace) -> int:
    from .config import ConfigError

    pidfile = Path(args.pid_file) if args.pid_file else default_pid_file(args.config)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        print(f"triogate: no running gateway found (no pid in {pidfile})", file=sys.stderr)
        return 1
    try:
        load_checked(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        print("triogate: not reloading; the running config keeps serving", file=sys.stderr)
        return EXIT_CONFIG
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"triogate: process {pid} (from {pidfile}) is not running", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to {pid}: the gateway validates the file again and swaps it in")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError

    try:
        cfg, registry, _ = load_checked(args.config)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG
    _setup_logging(cfg.gateway.log_level)  # the Gateway logs skipped plugins
    pid_file = Path(args.pid_file) if args.pid_file else default_pid_file(args.config)
    workers = args.workers or cfg.gateway.workers
    if workers > 1:
        from .supervisor import supervise

        return supervise(args.config, cfg, workers, pid_file, registry)
    return run_single(args.config, cfg, registry=registry, pid_file=pid_file)


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


def run_single(
    config_path: str,
    cfg: Any,
    *,
    registry: Any = None,
    pid_file: Path | None = None,
    sockets: list[Any] | None = None,
    worker: int = 0,
    ready_fd: int | None = None,
) -> int:
    """Run one gateway process until SIGINT/SIGTERM (drain, then exit 0); SIGHUP reloads the file.

    ``sockets``/``worker``/``ready_fd`` are for the supervisor's workers: inherited
    listening sockets, the worker index, and a pipe to report "listening" on. Call it from the
    main thread of a process that exits afterwards: SIGINT and SIGTERM stay ignored once it
    returns, so a late duplicate stop signal cannot kill a process that drained cleanly.
    """
    import trio

    from .app import Gateway, StartupError, serve
    from .config import ConfigError

    try:
        gateway = Gateway(cfg, registry=registry, config_path=config_path, worker=worker)
    except ConfigError as exc:
        _print_errors(exc)
        return EXIT_CONFIG

    async def main() -> None:
        stop = trio.Event()

        async def reload() -> None:
            await gateway.reload()  # a refusal is logged there, one line per error

        async def signals(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as sigs:
                task_status.started()
                async for sig in sigs:
                    if sig == signal.SIGHUP:
                        log.info("SIGHUP: reloading %s", config_path)
                        nursery.start_soon(reload)
                    elif not stop.is_set():
                        log.info("shutting down (draining in-flight requests)")
                        stop.set()

        async def serving(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await serve(gateway, shutdown_trigger=stop.wait, task_status=task_status, sockets=sockets)
            nursery.cancel_scope.cancel()  # drained: stop the signal task too

        async with trio.open_nursery() as nursery:
            await nursery.start(signals)
            bound = await nursery.start(serving)
            if pid_file is not None:
                pid_file.write_text(f"{os.getpid()}\n")
            for host, port in bound:
                log.info("listening on http://%s:%d (worker %d, pid %d)", host, port, worker, os.getpid())
            if ready_fd is not None:
                os.write(ready_fd, b"1")
                os.close(ready_fd)

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
            except OSError:
                pass
    return 0


# --------------------------------------------------------------------------- argument parsing


def version_text() -> str:
    """``triogate --version``: what a bug report needs (Python, the HTTP/1.1 parser, the plugin distributions)."""
    import importlib.metadata as md
    import platform

    from . import __version__
    from .http1 import resolve_backend
    from .plugins import ENTRY_POINT_GROUP

    def version_of(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "?"

    try:
        backend = resolve_backend()
    except RuntimeError as exc:  # TRIOGATE_HTTP1_PARSER=fast without httptools
        backend = f"unavailable ({exc})"
    parser = {"fast": f"fast (llhttp through httptools {version_of('httptools')})",
              "h11": f"h11 {version_of('h11')} (the reference)"}.get(backend, backend)
    dists = sorted({f"{ep.dist.metadata['Name']} {ep.dist.version}"
                    for ep in md.entry_points(group=ENTRY_POINT_GROUP) if getattr(ep, "dist", None) is not None})
    ignored = " (ignored: TRIOGATE_DISABLE_PLUGIN_AUTOLOAD is set)" if os.environ.get(
        "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD") else ""
    return "\n".join([
        f"triogate {__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.platform})",
        f"HTTP/1.1 parser: {parser} unless [gateway] http1_parser says otherwise",
        f"plugin distributions{ignored}: {', '.join(dists) or 'none'}",
    ])


class _VersionAction(argparse.Action):
    """Like argparse's ``version`` action, but the text is only computed when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version, Python, HTTP/1.1 parser and plugin distributions")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="triogate", description="An API gateway for Python people.")
    p.add_argument("--version", action=_VersionAction)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("-c", "--config", default=os.environ.get("TRIOGATE_CONFIG", "gateway.toml"),
                        help="config file (default: gateway.toml, or $TRIOGATE_CONFIG)")
        return sp

    r = with_config(sub.add_parser("run", help="serve the gateway (SIGHUP reloads, SIGTERM drains and stops)"))
    r.add_argument("--workers", type=int, default=0, help="override [gateway] workers")
    r.add_argument("--pid-file", help="where to write the pid (default: .<config name>.pid next to the config)")
    r.set_defaults(func=cmd_run)
    with_config(sub.add_parser("check", help="validate a config file, plugin settings included")).set_defaults(
        func=cmd_check)
    i = sub.add_parser("init", help="write a starter config")
    i.add_argument("-o", "--output", default="gateway.toml", help="file to write (default: gateway.toml)")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=cmd_init)
    pl = sub.add_parser("plugins", help="list installed plugins")
    pl.add_argument("-v", "--verbose", action="store_true",
                    help="show distribution, version, priority, hooks and config fields")
    pl.add_argument("--json", action="store_true", help="machine-readable output (always verbose)")
    pl.add_argument("--strict", action="store_true", help="exit 1 if a plugin cannot be loaded")
    pl.set_defaults(func=cmd_plugins)
    ro = with_config(sub.add_parser("routes", help="show the route table in match order"))
    ro.add_argument("--json", action="store_true", help="machine-readable output")
    ro.set_defaults(func=cmd_routes)
    sub.add_parser("schema", help="print the JSON Schema of gateway.toml (installed plugins included)").set_defaults(
        func=cmd_schema)
    rl = with_config(sub.add_parser("reload", help="validate the file, then make the running gateway reload it"))
    rl.add_argument("--pid-file", help="pid file of the running gateway (default: .<config name>.pid)")
    rl.set_defaults(func=cmd_reload)
    return p


#: what a shell reports for a command killed by SIGPIPE (128 + 13), e.g. ``yes | head``
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader gone early fails here, not at interpreter exit
    except BrokenPipeError:
        # `triogate schema | head`: the reader has what it wanted. Exit like `cat` killed by SIGPIPE,
        # with no traceback, and point stdout at /dev/null so the final flush cannot complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
