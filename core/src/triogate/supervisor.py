"""``workers = N``: N processes sharing the listening sockets, restarted when they die.

The supervisor binds the sockets once and forks the workers, which inherit them
(the kernel spreads connections). SIGHUP is forwarded (each worker reloads),
SIGTERM/SIGINT drain every worker; a worker that dies is replaced, with a
back-off if it keeps dying at start.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

__all__ = ["supervise"]

log = logging.getLogger("triogate.supervisor")


def supervise(config_path: str, cfg: Any, workers: int, pid_file: Path | None) -> int:
    from .cli import run_single
    from .listeners import bind_socket

    sockets = [bind_socket(lst, reuse_port=False) for lst in cfg.gateway.listen]
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    started_at: dict[int, float] = {}

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # worker
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                code = run_single(config_path, cfg, sockets=sockets, worker=index)
            finally:
                os._exit(code)
        children[pid] = index
        started_at[index] = time.monotonic()

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for i in range(workers):
        spawn(i)
    if pid_file is not None:
        pid_file.write_text(str(os.getpid()))
    log.info("supervisor %d started %d workers", os.getpid(), workers)
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            index = children.pop(pid, None)
            if index is None or stopping:
                continue
            log.error("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
            if time.monotonic() - started_at.get(index, 0) < 1.0:
                time.sleep(1.0)  # crash loop back-off
            spawn(index)
    finally:
        if pid_file is not None:
            try:
                pid_file.unlink()
            except OSError:
                pass
    return 0
