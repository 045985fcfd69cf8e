"""A read-only view of the running gateway, for ``/status`` and for plugins (``services.runtime``).

Metrics exporters read it at scrape time: connections, requests in flight, config version
and reloads, the state of every upstream target of the config now serving, and the counters
plugins declared (``counters``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .counters import Counters

if TYPE_CHECKING:
    from .upstream import Upstream

__all__ = ["Runtime", "RuntimeSource", "TargetState"]


class RuntimeSource(Protocol):
    """What a :class:`Runtime` reads: the gateway (a stand-in when a config is only validated)."""

    worker: int
    version: int
    started_at: float
    draining: bool
    reloads: dict[str, int]

    @property
    def in_flight(self) -> int: ...

    @property
    def upstreams(self) -> Mapping[str, Upstream]: ...


@attrs.frozen
class TargetState:
    """One upstream target of the config now serving."""

    upstream: str
    url: str
    healthy: bool
    circuit: str  # "closed", "open" or "half-open"
    active_requests: int
    open_connections: int


class Runtime:
    """Process-level facts of one gateway: the same object across reloads."""

    def __init__(self, source: RuntimeSource) -> None:
        self._source = source
        self.pid = os.getpid()
        self.servers: list[Any] = []  # the public listeners' servers, once serving
        self.supervised = False  # a worker under ``triogate run --workers``
        #: counters plugins declared (``GatewayServices.counter``), for metrics exporters to read
        self.counters = Counters()

    def attach(self, servers: list[Any], *, supervised: bool = False) -> None:
        """Called when the listeners serve."""
        self.servers = servers
        self.supervised = supervised

    @property
    def worker(self) -> int:
        return self._source.worker

    @property
    def open_connections(self) -> int:
        """Client connections open on the public listeners of this process."""
        return sum(len(getattr(s, "connections", ())) for s in self.servers)

    @property
    def in_flight(self) -> int:
        """Requests running on the config now serving."""
        return self._source.in_flight

    @property
    def reloads(self) -> dict[str, int]:
        """Config reloads of this process by outcome: ``{"ok": n, "failed": n}``."""
        return dict(self._source.reloads)

    @property
    def config_version(self) -> int:
        """1 for the config loaded at start, +1 per successful reload."""
        return self._source.version

    @property
    def started_at(self) -> float:
        """Wall-clock time (``time.time()``) the gateway was created."""
        return self._source.started_at

    @property
    def draining(self) -> bool:
        return self._source.draining

    def targets(self) -> list[TargetState]:
        """Every target of every upstream of the config now serving."""
        out = []
        for up in self._source.upstreams.values():
            for t in up.targets:
                out.append(TargetState(up.name, t.url, t.healthy, t.breaker.state.value, t.pool.active_requests,
                                       t.pool.open_connections))
        return out


class Detached:
    """The :class:`RuntimeSource` of a config that is loaded but not run by a gateway (validation, tests)."""

    def __init__(self, upstreams: Mapping[str, Upstream], *, version: int = 1, worker: int = 0) -> None:
        self.upstreams = upstreams
        self.version = version
        self.worker = worker
        self.started_at = time.time()
        self.draining = False
        self.reloads = {"ok": 0, "failed": 0}
        self.in_flight = 0
