"""Rendering a scrape: this process's registry, or every worker's files in multi-process mode."""

from __future__ import annotations

import glob
import os
import re

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .metrics import Metrics, multiprocess_dir

__all__ = ["reap_dead_workers", "render"]

_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def reap_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that are gone (a restarted worker has a new pid)."""
    from prometheus_client import multiprocess

    for f in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        m = _GAUGE_FILE.search(f)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            pass


def render(metrics: Metrics, accept: str | None = None) -> tuple[bytes, str]:
    """The scrape body and its content type (text format, or OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept or "")
    path = multiprocess_dir()
    if path is None:
        return encoder(metrics.registry), content_type
    from prometheus_client import multiprocess

    reap_dead_workers(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return encoder(registry), content_type
