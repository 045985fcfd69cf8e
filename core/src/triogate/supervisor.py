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
  the running config keeps serving everywhere.
- ``SIGTERM``/``SIGINT``: every worker drains; the supervisor exits 0 once they are
  gone, killing stragglers after drain + shutdown timeouts + a grace period.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["supervise"]

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


def supervise(config_path: str, cfg: Any, workers: int, pid_file: Path | None, registry: Any = None) -> int:
    """Run ``workers`` gateway processes on shared sockets until SIGTERM/SIGINT; returns the exit code."""
    from .cli import load_checked, run_single
    from .config import ConfigError
    from .listeners import bind_socket

    try:
        sockets = [bind_socket(lst) for lst in cfg.gateway.listen]
    except OSError as exc:
        where = ", ".join(lst.address for lst in cfg.gateway.listen)
        print(f"triogate: cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for sock in sockets:
        sock.set_inheritable(True)

    current = {"cfg": cfg, "registry": registry}
    pool = [_Worker(i) for i in range(workers)]
    by_pid: dict[int, _Worker] = {}
    restart_at: dict[int, float] = {}  # worker index -> monotonic time
    stopping = False
    stop_deadline = 0.0
    failed_start = False

    def spawn(w: _Worker) -> None:
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # ---- the worker
            code = 1
            try:
                os.close(r)
                for other in pool:
                    if other.ready_fd is not None:
                        os.close(other.ready_fd)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
                for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                code = run_single(config_path, current["cfg"], registry=current["registry"], sockets=sockets,
                                  worker=w.index, ready_fd=wfd)
            except BaseException:
                logging.getLogger("triogate").exception("worker %d crashed", w.index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(wfd)
        w.pid, w.ready_fd, w.ready, w.started = pid, r, False, time.monotonic()
        by_pid[pid] = w

    def broadcast(sig: int) -> None:
        for pid in list(by_pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def begin_stop() -> None:
        nonlocal stopping, stop_deadline
        if stopping:
            return
        stopping = True
        t = current["cfg"].gateway.timeouts
        stop_deadline = time.monotonic() + t.drain + t.shutdown + 5.0
        restart_at.clear()
        broadcast(signal.SIGTERM)

    def reload() -> None:
        try:
            new_cfg, new_registry, _ = load_checked(config_path)
        except ConfigError as exc:
            for i, e in enumerate(exc.errors, 1):  # one line per error: line-based log shipping
                log.error("reload rejected, every worker keeps its running config (%d/%d): %s: %s",
                          i, len(exc.errors), exc.source, e)
            return
        except Exception:
            log.exception("reload rejected, every worker keeps its running config")
            return
        current["cfg"], current["registry"] = new_cfg, new_registry
        log.info("config valid: reloading %d workers", len(by_pid))
        broadcast(signal.SIGHUP)

    def poll_ready() -> None:
        fds = [w.ready_fd for w in pool if w.ready_fd is not None]
        if not fds:
            return
        readable, _, _ = select.select(fds, [], [], 0)
        for w in pool:
            if w.ready_fd in readable:
                data = os.read(w.ready_fd, 1)
                os.close(w.ready_fd)
                w.ready_fd = None
                w.ready = bool(data)

    def reap() -> None:
        nonlocal failed_start
        while by_pid:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = by_pid.pop(pid, None)
            if w is None:
                continue
            poll_ready()
            if w.ready_fd is not None:
                os.close(w.ready_fd)
                w.ready_fd = None
            if stopping:
                log.info("worker %d (pid %d) stopped: %s", w.index, pid, _exit_status(status))
                continue
            if not w.ready and w.failures == 0 and w.started == first_start[w.index]:
                log.error("worker %d (pid %d) failed to start (%s)", w.index, pid, _exit_status(status))
                failed_start = True
                begin_stop()
                continue
            quick = time.monotonic() - w.started < _QUICK_DEATH
            w.failures = w.failures + 1 if quick else 0
            delay = min(_MAX_BACKOFF, 0.5 * 2 ** (w.failures - 1)) if w.failures else 0.0
            log.error("worker %d (pid %d) died (%s); restarting in %.1f s", w.index, pid, _exit_status(status), delay)
            restart_at[w.index] = time.monotonic() + delay

    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        for w in pool:
            spawn(w)
        first_start = {w.index: w.started for w in pool}
        pid_written = False
        while by_pid or (restart_at and not stopping):
            if not pid_written and all(w.ready for w in pool) and pid_file is not None:
                pid_file.write_text(f"{os.getpid()}\n")
                pid_written = True
                log.info("supervisor %d: %d workers serving", os.getpid(), workers)
            info = signal.sigtimedwait(_SIGNALS, 0.1 if not pid_written else 0.5)
            if info is not None:
                if info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    log.info("shutting down: draining %d workers", len(by_pid))
                    begin_stop()
                elif info.si_signo == signal.SIGHUP and not stopping:
                    reload()
            poll_ready()
            reap()
            now = time.monotonic()
            for index, when in list(restart_at.items()):
                if when <= now and not stopping:
                    del restart_at[index]
                    spawn(pool[index])
            if stopping and by_pid and now > stop_deadline:
                log.error("workers did not drain in time; killing %s", sorted(by_pid))
                broadcast(signal.SIGKILL)
                stop_deadline = now + 5.0
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        for sock in sockets:
            sock.close()
        if pid_file is not None:
            try:
                if pid_file.read_text().strip() == str(os.getpid()):
                    pid_file.unlink()
            except OSError:
                pass
    if failed_start:
        print("triogate: a worker failed to start; see the log above", file=sys.stderr)
        return 1
    return 0
