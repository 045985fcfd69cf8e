"""``workers = N``: N processes sharing the listening sockets, restarted when they die.

The supervisor binds the sockets once and forks the workers, which inherit them
(the kernel spreads connections over the processes accepting on one socket).
It runs no event loop: signals are blocked and taken synchronously with
``sigtimedwait``, so there is no handler re-entrancy and no lost ``SIGCHLD``.

- A worker reports "listening" over a pipe. If a worker dies before the first
  start completed, the supervisor stops the others and exits 1: a gateway that
  cannot start must not pretend to run.
- A worker that dies later is restarted, with an exponential back-off when it
  keeps dying soon after start.
- ``SIGHUP``: the supervisor validates the file fully; if it is valid every worker
  reloads it (and restarted workers use it), otherwise the errors are logged and
  the running config keeps serving everywhere. Each worker writes its outcome to a
  state file; the supervisor gathers them into the reload's outcome
  (:mod:`triogate.reloadstate`), which ``triogate reload`` and the admin API wait for.
- ``watch``: the supervisor polls the config file and the files it references
  (:mod:`triogate.configwatch`) and reloads like on SIGHUP when they change.
- ``SIGTERM``/``SIGINT``: every worker drains; the supervisor exits 0 once they are
  gone, killing stragglers after drain + shutdown timeouts + a grace period.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import ConfigError
from .configwatch import POLL_INTERVAL, ConfigWatcher
from .listeners import bind_socket
from .reloadstate import ReloadState
from .runner import load_checked, run_single

__all__ = ["Supervisor", "supervise"]

log = logging.getLogger("triogate.supervisor")

_SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
_QUICK_DEATH = 10.0  # a worker dying sooner than this after its start backs off its restart
_MAX_BACKOFF = 30.0


class _Worker:
    __slots__ = ("failures", "index", "pid", "ready", "ready_fd", "started")

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid = 0
        self.ready_fd: int | None = None
        self.ready = False
        self.started = 0.0
        self.failures = 0


def _exit_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def supervise(config_path: str, cfg: Any, workers: int, pid_file: Path | None, registry: Any = None,
              watch: bool = False) -> int:
    """Run ``workers`` gateway processes on shared sockets until SIGTERM/SIGINT; returns the exit code."""
    try:
        sockets = [bind_socket(lst) for lst in cfg.gateway.listen]
    except OSError as exc:
        where = ", ".join(lst.address for lst in cfg.gateway.listen)
        print(f"triogate: cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for sock in sockets:
        sock.set_inheritable(True)
    return Supervisor(config_path, cfg, registry, sockets, workers, pid_file,
                      run_worker=run_single, load=load_checked, watch=watch).run()


class Supervisor:
    """The supervisor's state and its jobs: start a worker, restart it with back-off, fan out
    SIGHUP, drain. One instance per :func:`supervise` call; it owns the (already bound) sockets.

    ``run_worker(config_path, cfg, registry=, sockets=, worker=, ready_fd=, reload_state=)`` is the gateway in a
    forked worker (its exit code); ``load(config_path)`` validates the file for a reload and
    returns ``(cfg, registry, _)`` or raises :class:`~triogate.ConfigError`.
    """

    def __init__(self, config_path: str, cfg: Any, registry: Any, sockets: list[socket.socket], workers: int,
                 pid_file: Path | None, *, run_worker: Callable[..., int], load: Callable[[str], Any],
                 watch: bool = False) -> None:
        self.config_path = config_path
        self.cfg = cfg
        self.registry = registry
        self.sockets = sockets
        self.pid_file = pid_file
        self.run_worker = run_worker
        self.load = load
        self.pool = [_Worker(i) for i in range(workers)]
        self.by_pid: dict[int, _Worker] = {}
        self.restart_at: dict[int, float] = {}  # worker index -> monotonic time
        self.first_start: dict[int, float] = {}
        self.stopping = False
        self.stop_deadline = 0.0
        self.failed_start = False
        self.pid_written = False
        self.state = ReloadState(pid_file) if pid_file is not None else None
        #: the reload whose worker outcomes are awaited: id, deadline, {worker index: error if it died},
        #: and the (config, registry) to go back to if no worker applies it
        self.pending: tuple[str, float, dict[int, str], tuple[Any, Any]] | None = None
        self.watcher = ConfigWatcher(config_path, cfg) if watch else None

    # ---------------------------------------------------------------- the loop

    def run(self) -> int:
        """Start every worker, then take signals and deaths until every worker is gone."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for w in self.pool:
                self.start_worker(w)
            self.first_start = {w.index: w.started for w in self.pool}
            if self.watcher is not None:
                log.info("watching %s for changes", ", ".join(str(p) for p in self.watcher.paths))
            while self.by_pid or (self.restart_at and not self.stopping):
                self.announce_when_ready()
                busy = not self.pid_written or self.pending is not None
                wait = 0.1 if busy else POLL_INTERVAL if self.watcher is not None else 0.5
                info = signal.sigtimedwait(_SIGNALS, wait)
                if info is not None:
                    if info.si_signo in (signal.SIGTERM, signal.SIGINT):
                        log.info("shutting down: draining %d workers", len(self.by_pid))
                        self.drain()
                    elif info.si_signo == signal.SIGHUP and not self.stopping:
                        self.reload()
                self.poll_ready()
                self.reap()
                now = time.monotonic()
                self.restart_due(now)
                self.kill_stragglers(now)
                self.collect_outcomes(now)
                if self.watcher is not None and not self.stopping and self.watcher.poll(now):
                    log.info("config watch: a watched file changed; reloading %s", self.config_path)
                    self.reload()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            for sock in self.sockets:
                sock.close()
            self.remove_pid_file()
        if self.failed_start:
            print("triogate: a worker failed to start; see the log above", file=sys.stderr)
            return 1
        return 0

    # ---------------------------------------------------------------- start a worker

    def start_worker(self, w: _Worker) -> None:
        """Fork worker ``w`` on the shared sockets; it reports "listening" over a pipe."""
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._worker_process(w, r, wfd)  # never returns
        os.close(wfd)
        w.pid, w.ready_fd, w.ready, w.started = pid, r, False, time.monotonic()
        self.by_pid[pid] = w

    def _worker_process(self, w: _Worker, r: int, wfd: int) -> None:
        """The forked child: default signal handling, the gateway, then ``os._exit``."""
        code = 1
        try:
            os.close(r)
            for other in self.pool:
                if other.ready_fd is not None:
                    os.close(other.ready_fd)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            code = self.run_worker(self.config_path, self.cfg, registry=self.registry, sockets=self.sockets,
                                   worker=w.index, ready_fd=wfd, reload_state=self.state)
        except BaseException:
            logging.getLogger("triogate").exception("worker %d crashed", w.index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def poll_ready(self) -> None:
        """Read the "listening" reports that have arrived."""
        fds = [w.ready_fd for w in self.pool if w.ready_fd is not None]
        if not fds:
            return
        readable, _, _ = select.select(fds, [], [], 0)
        for w in self.pool:
            if w.ready_fd in readable:
                data = os.read(w.ready_fd, 1)
                os.close(w.ready_fd)
                w.ready_fd = None
                w.ready = bool(data)

    def announce_when_ready(self) -> None:
        """Once every worker listens: write the pid file and say so (once)."""
        if not self.pid_written and all(w.ready for w in self.pool) and self.pid_file is not None:
            self.pid_file.write_text(f"{os.getpid()}\n")
            if self.state is not None:
                self.state.write_source(self.config_path)
            self.pid_written = True
            log.info("supervisor %d: %d workers serving", os.getpid(), len(self.pool))

    def remove_pid_file(self) -> None:
        if self.pid_file is not None:
            try:
                if self.pid_file.read_text().strip() == str(os.getpid()):
                    self.pid_file.unlink()
                    if self.state is not None:
                        self.state.cleanup(len(self.pool))
            except OSError:
                pass

    # ---------------------------------------------------------------- restart with back-off

    def reap(self) -> None:
        """Collect every dead worker: a failed first start stops everything, a later death restarts."""
        while self.by_pid:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = self.by_pid.pop(pid, None)
            if w is None:
                continue
            self.poll_ready()
            if w.ready_fd is not None:
                os.close(w.ready_fd)
                w.ready_fd = None
            self.worker_died(w, pid, status)

    def worker_died(self, w: _Worker, pid: int, status: int) -> None:
        if self.pending is not None and w.index in self.pending[2]:
            self.pending[2][w.index] = f"worker {w.index} (pid {pid}) died during the reload ({_exit_status(status)})"
        if self.stopping:
            log.info("worker %d (pid %d) stopped: %s", w.index, pid, _exit_status(status))
            return
        if not w.ready and w.failures == 0 and w.started == self.first_start[w.index]:
            log.error("worker %d (pid %d) failed to start (%s)", w.index, pid, _exit_status(status))
            self.failed_start = True
            self.drain()
            return
        quick = time.monotonic() - w.started < _QUICK_DEATH
        w.failures = w.failures + 1 if quick else 0
        delay = min(_MAX_BACKOFF, 0.5 * 2 ** (w.failures - 1)) if w.failures else 0.0
        log.error("worker %d (pid %d) died (%s); restarting in %.1f s", w.index, pid, _exit_status(status), delay)
        self.restart_at[w.index] = time.monotonic() + delay

    def restart_due(self, now: float) -> None:
        """Start the workers whose back-off has passed."""
        for index, when in list(self.restart_at.items()):
            if when <= now and not self.stopping:
                del self.restart_at[index]
                self.start_worker(self.pool[index])

    # ---------------------------------------------------------------- SIGHUP

    def reload(self) -> None:
        """Validate the file; if valid, every worker reloads it (and restarted ones start with it)."""
        rid = self.state.take_request() if self.state is not None else ""
        if self.pending is not None:  # a reload still waiting for its workers: this one supersedes it
            self.finish_reload(["superseded by a newer reload before every worker reported"])
        try:
            new_cfg, new_registry, _ = self.load(self.config_path)
        except ConfigError as exc:
            if self.watcher is not None:
                self.watcher.follow(self.cfg)
            for i, e in enumerate(exc.errors, 1):  # one line per error: line-based log shipping
                log.error("reload rejected, every worker keeps its running config (%d/%d): %s: %s",
                          i, len(exc.errors), exc.source, e)
            self.write_outcome(rid, [], [f"{exc.source}: {' '.join(e.splitlines())}" for e in exc.errors])
            return
        except Exception as exc:
            log.exception("reload rejected, every worker keeps its running config")
            self.write_outcome(rid, [], [f"reload failed: {type(exc).__name__}: {exc}"])
            return
        previous = (self.cfg, self.registry)
        self.cfg, self.registry = new_cfg, new_registry
        if self.watcher is not None:
            self.watcher.follow(new_cfg)
        log.info("config valid: reloading %d workers", len(self.by_pid))
        if self.state is not None:
            try:
                self.state.fan_out(rid)
            except OSError as exc:
                log.error("cannot write the reload id next to %s: %s", self.state.pid_file, exc)
            else:
                # workers get startup timeout (their startup hooks) plus a margin to report
                deadline = time.monotonic() + self.cfg.gateway.timeouts.startup + 10.0
                self.pending = (rid, deadline, {w.index: "" for w in self.by_pid.values()}, previous)
        self.broadcast(signal.SIGHUP)

    def collect_outcomes(self, now: float) -> None:
        """Once every signalled worker reported (or died, or the wait ran out): the reload's outcome."""
        if self.pending is None or self.state is None:
            return
        rid, deadline, expected, _ = self.pending
        waiting = [i for i, died in expected.items() if not died and (self.state.read_worker(i) or {}).get("id") != rid]
        if not waiting:
            self.finish_reload([])
        elif now > deadline:
            self.finish_reload([f"worker {i}: no reload outcome within the wait" for i in waiting])

    def finish_reload(self, errors: list[str]) -> None:
        assert self.pending is not None and self.state is not None
        rid, _, expected, previous = self.pending
        self.pending = None
        entries = []
        for i, died in sorted(expected.items()):
            entry = self.state.read_worker(i)
            if not died and entry is not None and entry.get("id") == rid:
                entries.append(entry)
            elif died:
                errors.append(died)
        if not any(e["ok"] for e in entries):  # refused everywhere: a restarted worker starts on the old one
            self.cfg, self.registry = previous
        self.write_outcome(rid, entries, errors)

    def write_outcome(self, rid: str, workers: list[dict[str, Any]], errors: list[str]) -> None:
        if self.state is None:
            return
        try:
            outcome = self.state.write_outcome(rid, workers, errors)
        except OSError as exc:
            log.error("cannot write the reload outcome next to %s: %s", self.state.pid_file, exc)
            return
        if workers and outcome["ok"]:
            log.info("reload applied by every worker (%d)", len(workers))
        elif workers:
            for e in errors:
                log.error("reload: %s", e)

    def broadcast(self, sig: int) -> None:
        for pid in list(self.by_pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # ---------------------------------------------------------------- drain

    def drain(self) -> None:
        """Ask every worker to drain (once); stragglers are killed after drain + shutdown + 5 s."""
        if self.stopping:
            return
        self.stopping = True
        t = self.cfg.gateway.timeouts
        self.stop_deadline = time.monotonic() + t.drain + t.shutdown + 5.0
        self.restart_at.clear()
        self.broadcast(signal.SIGTERM)

    def kill_stragglers(self, now: float) -> None:
        if self.stopping and self.by_pid and now > self.stop_deadline:
            log.error("workers did not drain in time; killing %s", sorted(self.by_pid))
            self.broadcast(signal.SIGKILL)
            self.stop_deadline = now + 5.0
