"""The ``triogate`` command: run, check, init, plugins, routes, schema, reload, diff.

Config errors print every problem with its file and key path and exit 2, never
with a traceback; other start-up failures (a port in use, a plugin's startup hook)
print one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import logging
import os
import platform
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import tomli_w

from ._version import __version__
from .config import ConfigError
from .configdiff import diff_configs, format_changes
from .http1 import resolve_backend
from .plugins import ENTRY_POINT_GROUP, PluginRegistry, plugin_summary
from .reloadstate import ReloadState
from .runner import EXIT_CONFIG, EXIT_STARTUP, count, default_pid_file, load_checked, print_errors, run_single
from .schema import config_schema
from .supervisor import supervise

__all__ = ["EXIT_CONFIG", "EXIT_STARTUP", "default_pid_file", "load_checked", "main", "run_single"]


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
    try:
        cfg, _, pipeline = load_checked(args.config)
    except ConfigError as exc:
        print_errors(exc)
        return EXIT_CONFIG
    _warn_skipped(pipeline)
    print(f"{args.config}: ok ({count(len(cfg.routes), 'route')}, {count(len(cfg.upstreams), 'upstream')},"
          f" {count(len(pipeline.instances), 'plugin instance')})")
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    try:
        _, _, pipeline = load_checked(args.config)
    except ConfigError as exc:
        print_errors(exc)
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
    path = Path(args.output)
    if path.exists() and not args.force:
        print(f"triogate: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    path.write_text(STARTER_HEADER + tomli_w.dumps(STARTER), encoding="utf-8")
    schema = path.with_name(SCHEMA_FILE)  # generated, so always refreshed: the #:schema line points here
    schema.write_text(json.dumps(config_schema(PluginRegistry()), indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path} and {schema}; check it with: triogate check -c {path}")
    return 0


def _print_outcome(outcome: dict[str, Any]) -> int:
    """A reload's outcome, one line per worker or per error; 0 only when every worker applied it."""
    workers = outcome.get("workers") or []
    if outcome.get("ok"):
        for w in workers:
            print(f"reloaded: worker {w['worker']} (pid {w['pid']}) serves config version {w['config_version']}")
        return 0
    errors = outcome.get("errors") or ["the gateway refused the reload (no detail given)"]
    print(f"triogate: reload refused, the running config keeps serving ({count(len(errors), 'error')}):",
          file=sys.stderr)
    for e in errors:
        print(f"  {' '.join(str(e).splitlines())}", file=sys.stderr)
    return 1


def _running_source(base: str, token: str, timeout: float) -> str | None:
    """The file the running gateway reloads from (``GET /status``), or None when it does not say."""
    req = urllib.request.Request(f"{base}/status", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            source = json.loads(resp.read()).get("config_source")
    except (OSError, ValueError, AttributeError):
        return None  # the POST below reports an unreachable gateway
    return source if isinstance(source, str) else None


def _reload_by_admin(listen: str, token: str, timeout: float, config_path: str) -> int:
    """``POST /reload`` on the admin API: it answers with every worker's outcome. The gateway re-reads
    its own file, so a ``-c`` naming another one is refused rather than "reloaded" without effect."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):  # listening everywhere: ask over loopback
        host = "127.0.0.1"
    base = f"http://{host}:{port}"
    source = _running_source(base, token, timeout)
    if source and Path(source).resolve() != Path(config_path).resolve():
        print(f"triogate: the running gateway reloads from {source}, not {config_path}: not reloading;"
              f" put the new config in {source} (triogate diff -c {config_path} --against {source} shows"
              " what would change)", file=sys.stderr)
        return EXIT_CONFIG
    url = f"{base}/reload"
    req = urllib.request.Request(url, method="POST", data=b"", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        print(f"triogate: no running gateway answers on the admin API at {url}: {reason}", file=sys.stderr)
        return 1
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    if status == 200:
        return _print_outcome({"ok": True, "workers": data.get("workers") or []})
    if status == 422:
        return _print_outcome({"ok": False, "errors": data.get("errors")})
    print(f"triogate: the admin API answered {status} to POST {url}: {data.get('detail') or body[:200]!r}",
          file=sys.stderr)
    return 1


def cmd_reload(args: argparse.Namespace) -> int:
    try:
        cfg, _, _ = load_checked(args.config)
    except ConfigError as exc:
        print_errors(exc)
        print("triogate: not reloading; the running config keeps serving", file=sys.stderr)
        return EXIT_CONFIG
    if cfg.admin.listen and cfg.admin.token and not args.pid_file:
        return _reload_by_admin(cfg.admin.listen, cfg.admin.token, args.timeout, args.config)
    pidfile = Path(args.pid_file) if args.pid_file else default_pid_file(args.config)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        print(f"triogate: no running gateway found (no pid in {pidfile})", file=sys.stderr)
        return 1
    state = ReloadState(pidfile)
    source = state.read_source()
    if source and Path(source) != Path(args.config).resolve():
        print(f"triogate: the running gateway (pid {pid}) reloads from {source}, not {args.config}: not reloading;"
              f" put the new config in {source} (triogate diff -c {args.config} --against {source} shows"
              " what would change)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        os.kill(pid, 0)  # before leaving a request nobody would take
        rid = state.request_reload()
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"triogate: process {pid} (from {pidfile}) is not running", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"triogate: cannot ask process {pid} to reload: {exc}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    while (outcome := state.outcome(rid)) is None:
        if time.monotonic() > deadline:
            print(f"triogate: sent SIGHUP to {pid}, but no reload outcome appeared in {state.result} within"
                  f" {args.timeout:g} s; see the gateway's log", file=sys.stderr)
            return 1
        time.sleep(0.05)
    return _print_outcome(outcome)


#: ``triogate diff`` exit statuses, as diff(1): 0 the same, 1 different, 2 trouble (an invalid config,
#: no gateway to ask)
EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def _print_diff(args: argparse.Namespace, changes: list[dict[str, Any]], text: str, source: str | None) -> int:
    if args.json:
        print(json.dumps({"valid": True, "against": source, "changes": changes}, indent=2, ensure_ascii=False))
    else:
        print(text)
    return EXIT_DIFFERENT if changes else EXIT_SAME


def _dry_run_by_admin(args: argparse.Namespace, listen: str, token: str, config_path: str) -> int:
    """``POST /reload?dry_run=1``: the running gateway validates the file it would reload and diffs it."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):  # listening everywhere: ask over loopback
        host = "127.0.0.1"
    base = args.admin.rstrip("/") if args.admin else f"http://{host}:{port}"
    url = f"{base}/reload?dry_run=1"
    req = urllib.request.Request(url, method="POST", data=b"", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        print(f"triogate: no running gateway answers on the admin API at {base}: {reason}"
              " (compare two files with --against)", file=sys.stderr)
        return EXIT_TROUBLE
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    if status == 422:
        errors = data.get("errors") or ["the gateway found the file invalid (no detail given)"]
        print(f"triogate: invalid configuration, as the running gateway reads it ({count(len(errors), 'error')}):",
              file=sys.stderr)
        for e in errors:
            print(f"  {' '.join(str(e).splitlines())}", file=sys.stderr)
        return EXIT_TROUBLE
    if status != 200 or not isinstance(data.get("changes"), list):
        print(f"triogate: the admin API answered {status} to POST {url}: {data.get('detail') or body[:200]!r}",
              file=sys.stderr)
        return EXIT_TROUBLE
    source = data.get("config_source")
    if source and Path(source).resolve() != Path(config_path).resolve():
        print(f"triogate: the running gateway reloads from {source}, not {config_path}: a dry run compares"
              " that file; compare two files with --against", file=sys.stderr)
        return EXIT_TROUBLE
    return _print_diff(args, data["changes"], data.get("text") or "no changes", "running gateway")


def cmd_diff(args: argparse.Namespace) -> int:
    """What a reload of ``-c`` would change: against ``--against`` (a file), or the running gateway."""
    try:
        new, registry, _ = load_checked(args.config)
    except ConfigError as exc:
        print_errors(exc)
        return EXIT_TROUBLE
    if args.against:
        try:
            old, _, _ = load_checked(args.against, registry)
        except ConfigError as exc:
            print_errors(exc)
            return EXIT_TROUBLE
        changes = diff_configs(old, new, registry)
        return _print_diff(args, [c.to_json() for c in changes], format_changes(changes), args.against)
    listen = new.admin.listen
    token = args.token or os.environ.get("TRIOGATE_ADMIN_TOKEN") or new.admin.token
    if not (args.admin or listen) or not token:
        print(f"triogate: {args.config} configures no admin API ([admin] listen and token) to ask the running"
              " gateway: give --admin URL and --token, or compare two files with --against", file=sys.stderr)
        return EXIT_TROUBLE
    return _dry_run_by_admin(args, listen or "", token, args.config)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        cfg, registry, _ = load_checked(args.config)
    except ConfigError as exc:
        print_errors(exc)
        return EXIT_CONFIG
    _setup_logging(cfg.gateway.log_level)  # the Gateway logs skipped plugins
    pid_file = Path(args.pid_file) if args.pid_file else default_pid_file(args.config)
    workers = args.workers or cfg.gateway.workers
    watch = args.watch or cfg.gateway.watch
    if workers > 1:
        return supervise(args.config, cfg, workers, pid_file, registry, watch=watch)
    return run_single(args.config, cfg, registry=registry, pid_file=pid_file, watch=watch)


# --------------------------------------------------------------------------- argument parsing


def version_text() -> str:
    """``triogate --version``: what a bug report needs (Python, the HTTP/1.1 parser, the plugin distributions)."""
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
    r.add_argument("--watch", action="store_true",
                   help="reload when the config file or a file it references changes (like [gateway] watch)")
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
    rl.add_argument("--pid-file", help="pid file of the running gateway (default: .<config name>.pid); "
                    "given, it signals that gateway even when [admin] is configured")
    rl.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for every worker's outcome (default: 30)")
    rl.set_defaults(func=cmd_reload)
    df = with_config(sub.add_parser(
        "diff", help="show what reloading the config would change (secrets masked); exit 0 same, 1 changes, 2 trouble",
        description="Validate the config and show what a reload would change: routes, upstreams and targets, plugins "
        "and their settings, consumers, gateway settings, with secrets masked. Without --against, the running "
        "gateway is asked through its admin API (POST /reload?dry_run=1): it validates the file it would reload and "
        "diffs it against the config it serves. Exit status: 0 no changes, 1 changes, 2 trouble (an invalid "
        "config, no gateway answering)."))
    df.add_argument("--against", metavar="OLD_TOML", help="compare with this file instead of the running gateway")
    df.add_argument("--admin", metavar="URL", help="admin API of the running gateway (default: [admin] listen)")
    df.add_argument("--token", help="admin token (default: $TRIOGATE_ADMIN_TOKEN, then [admin] token)")
    df.add_argument("--json", action="store_true", help="machine-readable output")
    df.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the admin API (default: 30)")
    df.set_defaults(func=cmd_diff)
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
