"""``triogate run --watch``: notice when the config file, or a file it names, changes.

Polling, not inotify: a ``stat`` of a handful of files every quarter second costs nothing,
works on every platform and filesystem (bind mounts, NFS, Kubernetes ConfigMaps swapped by a
symlink rename), and needs no dependency. ``watchfiles`` would add a Rust extension and an
anyio thread for what a few ``os.stat`` calls do. A file is "changed" when its mtime, inode or size
differs, so a save by rename (what editors do: write a temporary file, rename it over the old
one) is seen as well as a write in place, and a file that disappears or appears counts too.

Changes are debounced: the reload starts once nothing has changed for ``debounce`` seconds, so an
editor's write-then-rename or a ``cp`` of several files is one reload, not three.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["POLL_INTERVAL", "ConfigWatcher", "watched_paths"]

#: seconds between two looks at the watched files
POLL_INTERVAL = 0.25
_Stamp = tuple[int, int, int] | None


def watched_paths(config_path: str | os.PathLike[str], cfg: Any) -> list[Path]:
    """The config file and the files it references: hook modules given as paths, listener TLS
    certificates, keys, client CA bundles and CRLs, upstream TLS files. Relative paths resolve as
    the gateway reads them: hooks and upstream files against the config's folder, listener files
    against the working directory (docs/tls.md).

    ``cfg`` is a loaded :class:`~triogate.Config`, or the file's raw TOML tables (a refused file
    still names the files whose fix should trigger the next reload).
    """
    config = Path(config_path).resolve()
    base = config.parent
    found: list[Path] = [config]

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

    def add(value: Any, relative_to: Path = base) -> None:
        if isinstance(value, str) and value and "${" not in value:
            p = Path(value)
            found.append(p if p.is_absolute() else relative_to / p)

    gateway = get(cfg, "gateway")
    hooks = get(gateway, "hooks")
    for spec in hooks if isinstance(hooks, list) else []:
        if isinstance(spec, str) and (spec.endswith(".py") or "/" in spec or os.sep in spec):  # not a module name
            add(spec)
    listen = get(gateway, "listen")
    for lst in listen if isinstance(listen, list) else []:
        for key in ("tls_cert", "tls_key", "client_ca", "client_crl"):  # used as written: relative to the cwd
            add(get(lst, key), Path.cwd())
    upstreams = get(cfg, "upstreams")
    for up in upstreams.values() if isinstance(upstreams, dict) else []:
        tls = get(up, "tls")
        for key in ("ca", "cert", "key"):
            add(get(tls, key))
    return list(dict.fromkeys(found))


def _raw(config_path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(config_path, "rb") as f:
            return tomllib.load(f)
    except (OSError, ValueError):
        return {}


def _stamp(path: Path) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class ConfigWatcher:
    """Call :meth:`poll` every :data:`POLL_INTERVAL` seconds; it says when a reload is due."""

    def __init__(self, config_path: str | os.PathLike[str], cfg: Any, debounce: float = 0.5) -> None:
        self.config_path = config_path
        self.debounce = debounce
        self.paths = watched_paths(config_path, cfg)
        self.stamps = {p: _stamp(p) for p in self.paths}
        self.changed_at: float | None = None

    def poll(self, now: float) -> bool:
        """True once after the watched files changed and then stayed unchanged for ``debounce`` s."""
        stamps = {p: _stamp(p) for p in self.paths}
        if stamps != self.stamps:
            self.stamps = stamps
            self.changed_at = now
            return False
        if self.changed_at is not None and now - self.changed_at >= self.debounce:
            self.changed_at = None
            return True
        return False

    def follow(self, cfg: Any) -> None:
        """After a reload (applied or refused): watch the files the running config ``cfg`` references
        and the ones the file names now (a hook it adds may be what the next fix edits)."""
        paths = list(dict.fromkeys(watched_paths(self.config_path, cfg)
                                   + watched_paths(self.config_path, _raw(self.config_path))))
        if paths != self.paths:
            self.paths = paths
            self.stamps = {p: self.stamps.get(p, _stamp(p)) for p in paths}
