"""Reload outcomes on disk, so ``triogate reload`` can tell the truth about every worker.

A signal carries no answer, so the outcome of a SIGHUP reload goes through small JSON files
next to the pid file (written atomically: a temporary file, then a rename):

- ``<pid file>.reload-request``: the id ``triogate reload`` chose for its reload, written before
  it sends SIGHUP; the process that takes the SIGHUP (the gateway, or the supervisor) consumes it.
  A SIGHUP without one (``kill -HUP``, a config watch) gets a fresh id.
- ``<pid file>.reload-id``: with ``workers > 1``, the id the supervisor fans out; each worker
  reads it when the supervisor's SIGHUP arrives.
- ``<pid file>.reload.<worker>.json``: one worker's outcome (supervised workers only).
- ``<pid file>.reload.json``: the outcome of the whole reload, every worker included: written by
  the gateway itself, or by the supervisor once every worker has reported (or the wait ran out).

An outcome is ``{"id", "ok", "errors", "workers": [{"worker", "pid", "ok", "errors",
"config_version"}], "time"}``; ``errors`` holds one line per error.

The same directory holds ``<pid file>.stats.<worker>.json``: each supervised worker's counters and
upstream state, rewritten every second, which the admin API merges into the whole gateway's
(:mod:`triogate.adminstats`).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

__all__ = ["ReloadState", "new_reload_id", "worker_entry"]


def new_reload_id() -> str:
    """A fresh, unguessable-enough id for one reload (it only pairs a request with its outcome)."""
    return secrets.token_hex(8)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class ReloadState:
    """The reload files that belong to one pid file."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = Path(pid_file)
        name = self.pid_file.name
        self.request = self.pid_file.with_name(name + ".reload-request")
        self.fanout = self.pid_file.with_name(name + ".reload-id")
        self.result = self.pid_file.with_name(name + ".reload.json")
        self.source = self.pid_file.with_name(name + ".config")  # the file the gateway reloads from

    def worker_file(self, worker: int) -> Path:
        return self.pid_file.with_name(f"{self.pid_file.name}.reload.{worker}.json")

    # ------------------------------------------------------------ the requester (triogate reload, admin API)

    def request_reload(self) -> str:
        """Choose the id of the next reload and leave it for the process that takes the SIGHUP."""
        rid = new_reload_id()
        _write_json(self.request, rid)
        return rid

    def outcome(self, rid: str) -> dict[str, Any] | None:
        """The whole reload's outcome once it is written for ``rid``, else None."""
        data = _read_json(self.result)
        return data if isinstance(data, dict) and data.get("id") == rid else None

    def last_outcome(self) -> dict[str, Any] | None:
        """The latest reload's outcome, whatever its id (the admin API's ``/status``)."""
        data = _read_json(self.result)
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------ the process that takes the SIGHUP

    def take_request(self) -> str:
        """The id ``triogate reload`` left (consumed, so a later plain SIGHUP gets its own), or a new one."""
        rid = _read_json(self.request)
        try:
            self.request.unlink()
        except OSError:
            pass
        return rid if isinstance(rid, str) and rid else new_reload_id()

    def fan_out(self, rid: str) -> None:
        """The supervisor: the id its workers report their outcome under."""
        _write_json(self.fanout, rid)

    def fanned_out_id(self) -> str:
        """A supervised worker: the id of the reload the supervisor just signalled."""
        rid = _read_json(self.fanout)
        return rid if isinstance(rid, str) and rid else new_reload_id()

    def write_worker(self, worker: int, entry: dict[str, Any]) -> None:
        _write_json(self.worker_file(worker), entry)

    def read_worker(self, worker: int) -> dict[str, Any] | None:
        data = _read_json(self.worker_file(worker))
        return data if isinstance(data, dict) else None

    def stats_file(self, worker: int) -> Path:
        return self.pid_file.with_name(f"{self.pid_file.name}.stats.{worker}.json")

    def write_stats(self, worker: int, snapshot: dict[str, Any]) -> None:
        """A supervised worker's latest numbers (:mod:`triogate.adminstats`)."""
        _write_json(self.stats_file(worker), snapshot)

    def read_stats(self, worker: int) -> dict[str, Any] | None:
        data = _read_json(self.stats_file(worker))
        return data if isinstance(data, dict) else None

    def stats_workers(self) -> list[int]:
        """The worker indexes that have published stats (``--workers`` may differ from the file's)."""
        prefix = f"{self.pid_file.name}.stats."
        found = []
        for path in self.pid_file.parent.glob(prefix + "*.json"):
            index = path.name[len(prefix):-len(".json")]
            if index.isdigit():
                found.append(int(index))
        return sorted(found)

    def write_outcome(self, rid: str, workers: list[dict[str, Any]], errors: list[str] | None = None) -> dict[str, Any]:
        """The whole reload's outcome: ok only when every worker applied it and nothing else failed."""
        errs = list(errors or [])
        for w in workers:
            errs.extend(f"worker {w['worker']} (pid {w['pid']}): {e}" for e in w["errors"])
        data = {"id": rid, "ok": not errs and bool(workers), "errors": errs, "workers": workers, "time": time.time()}
        _write_json(self.result, data)
        return data

    def write_source(self, config_path: str) -> None:
        """Say which file this gateway reloads from, so ``triogate reload -c other.toml`` can refuse."""
        self.source.write_text(str(Path(config_path).resolve()) + "\n")

    def read_source(self) -> str | None:
        try:
            return self.source.read_text().strip() or None
        except OSError:
            return None

    def cleanup(self, workers: int = 0) -> None:
        """Remove the files when the gateway stops (an outcome must not outlive its gateway)."""
        for path in (self.request, self.fanout, self.result, self.source, *(self.worker_file(i) for i in range(workers)),
                     *(self.stats_file(i) for i in range(workers))):
            try:
                path.unlink()
            except OSError:
                pass


def worker_entry(worker: int, errors: list[str], config_version: int, rid: str) -> dict[str, Any]:
    """One worker's outcome of reload ``rid``."""
    return {"id": rid, "worker": worker, "pid": os.getpid(), "ok": not errors,
            "errors": [" ".join(e.splitlines()) for e in errors], "config_version": config_version}
