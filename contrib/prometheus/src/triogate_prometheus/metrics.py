"""The metric families the plugin exports, declared once in :data:`METRICS`, plus the counters
other plugins declare through the core (``GatewayServices.counter``: traffic-split, mirror,
fallback), exported as they are when scraped.

The Grafana dashboard in ``contrib/deploy`` is tested against this table.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import attrs
import triogate
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .labels import BoundedLabel

__all__ = ["METRICS", "MetricSpec", "Metrics", "exported_names", "multiprocess_dir"]

log = logging.getLogger("triogate.prometheus")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@attrs.frozen
class MetricSpec:
    name: str
    kind: str  # counter | histogram | gauge
    help: str
    labels: tuple[str, ...] = ()
    multiprocess_mode: str = ""  # gauges: how worker values combine


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("triogate_requests_total", "counter", "Requests by route, method, status class and consumer.",
               ("route", "method", "status_class", "consumer")),
    MetricSpec("triogate_request_duration_seconds", "histogram",
               "Time from the request head to the end of the response, as seen by the gateway.",
               ("route", "method", "status_class")),
    MetricSpec("triogate_upstream_duration_seconds", "histogram",
               "Time from sending a request upstream to receiving the response head (retries included).",
               ("route", "upstream")),
    MetricSpec("triogate_upstream_errors_total", "counter",
               "Upstream calls that got no response (connect failure, reset, timeout, no healthy target).",
               ("route", "upstream")),
    MetricSpec("triogate_request_bytes_total", "counter", "Request body bytes received from clients.", ("route",)),
    MetricSpec("triogate_response_bytes_total", "counter", "Response bytes sent to clients.", ("route",)),
    MetricSpec("triogate_auth_failures_total", "counter",
               "Requests refused with 401 or 403, by the plugin that refused and its reason.",
               ("route", "plugin", "reason")),
    MetricSpec("triogate_rate_limited_total", "counter", "Requests refused with 429, by plugin.", ("route", "plugin")),
    MetricSpec("triogate_cache_requests_total", "counter",
               "Cache lookups by result (hit, miss, stale, bypass), from the Cache-Status header.",
               ("route", "result")),
    MetricSpec("triogate_upstream_target_healthy", "gauge",
               "1 when the target is healthy (active checks), 0 when not; the minimum across workers.",
               ("upstream", "target"), "livemin"),
    MetricSpec("triogate_upstream_circuit_state", "gauge",
               "1 for the target's circuit-breaker state (closed, open, half-open); the maximum across workers.",
               ("upstream", "target", "state"), "livemax"),
    MetricSpec("triogate_open_connections", "gauge", "Client connections open on the public listeners.",
               (), "livesum"),
    MetricSpec("triogate_requests_in_flight", "gauge", "Requests being handled.", (), "livesum"),
    MetricSpec("triogate_config_reloads_total", "counter", "Config reloads by outcome (ok, failed).", ("outcome",)),
    MetricSpec("triogate_config_version", "gauge", "Version of the config serving (1 at start, +1 per reload).",
               (), "livemax"),
)
CIRCUIT_STATES = ("closed", "open", "half-open")


def multiprocess_dir() -> str | None:
    """The prometheus-client multi-process directory, when workers share their metrics."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def exported_names() -> set[str]:
    """Every sample name a scrape can contain (histogram and counter suffixes included)."""
    out: set[str] = set()
    for spec in METRICS:
        if spec.kind == "histogram":
            out |= {spec.name + s for s in ("_bucket", "_count", "_sum")}
        elif spec.kind == "counter":
            out |= {spec.name, spec.name.removesuffix("_total") + "_created"}
        else:
            out.add(spec.name)
    return out


class Metrics:
    """The metric objects of one gateway (shared by its plugin instances across reloads)."""

    def __init__(self, consumer_limit: int, reason_limit: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_dir() is not None
        made: dict[str, Any] = {}
        for spec in METRICS:
            name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
            kwargs: dict[str, Any] = {"labelnames": spec.labels, "registry": self.registry}
            if spec.kind == "counter":
                made[spec.name] = Counter(name, spec.help, **kwargs)
            elif spec.kind == "histogram":
                made[spec.name] = Histogram(name, spec.help, buckets=LATENCY_BUCKETS, **kwargs)
            else:
                made[spec.name] = Gauge(name, spec.help, multiprocess_mode=spec.multiprocess_mode, **kwargs)
        self.requests = made["triogate_requests_total"]
        self.duration = made["triogate_request_duration_seconds"]
        self.upstream_duration = made["triogate_upstream_duration_seconds"]
        self.upstream_errors = made["triogate_upstream_errors_total"]
        self.bytes_in = made["triogate_request_bytes_total"]
        self.bytes_out = made["triogate_response_bytes_total"]
        self.auth_failures = made["triogate_auth_failures_total"]
        self.rate_limited = made["triogate_rate_limited_total"]
        self.cache = made["triogate_cache_requests_total"]
        self.target_healthy = made["triogate_upstream_target_healthy"]
        self.circuit = made["triogate_upstream_circuit_state"]
        self.open_connections = made["triogate_open_connections"]
        self.in_flight = made["triogate_requests_in_flight"]
        self.reloads = made["triogate_config_reloads_total"]
        self.config_version = made["triogate_config_version"]
        self.consumer = BoundedLabel(consumer_limit)
        self.reason = BoundedLabel(reason_limit)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._reloads_seen = {"ok": 0, "failed": 0}
        self._targets_seen: set[tuple[str, str]] = set()
        # plugin counters: name -> its prometheus counter (None: the name is taken, not exported)
        self._plugin_counters: dict[str, Any] = {}
        self._plugin_seen: dict[tuple[str, tuple[str, ...]], float] = {}
        if not self.multiprocess:
            from prometheus_client import PlatformCollector, ProcessCollector

            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, memoized: label lookup is most of a counter's cost."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def sample(self, runtime: triogate.Runtime) -> None:
        """Set the gauges from the gateway's current state (at scrape time, and periodically with workers)."""
        self.open_connections.set(runtime.open_connections)
        self.in_flight.set(runtime.in_flight)
        self.config_version.set(runtime.config_version)
        for outcome, total in runtime.reloads.items():
            delta = total - self._reloads_seen.get(outcome, 0)
            if delta > 0:
                self.reloads.labels(outcome).inc(delta)
            self._reloads_seen[outcome] = total
        current: set[tuple[str, str]] = set()
        for target in runtime.targets():
            key = (target.upstream, target.url)
            current.add(key)
            self.target_healthy.labels(*key).set(1 if target.healthy else 0)
            for state in CIRCUIT_STATES:
                self.circuit.labels(*key, state).set(1 if target.circuit == state else 0)
        self._sample_plugin_counters(runtime)
        for key in self._targets_seen - current:  # a reload removed the target
            try:
                self.target_healthy.remove(*key)
                for state in CIRCUIT_STATES:
                    self.circuit.remove(*key, state)
            except KeyError:
                pass
        self._targets_seen = current

    def _sample_plugin_counters(self, runtime: triogate.Runtime) -> None:
        """Bring the prometheus counters up to the plugins' counts (each adds what it gained since
        the last sample, so with several workers each worker's file holds its own share)."""
        for counter in runtime.counters:
            metric = self._plugin_counters.get(counter.name, False)
            if metric is False:
                try:
                    metric = Counter(counter.name.removesuffix("_total"), counter.help,
                                     labelnames=counter.labels, registry=self.registry)
                except ValueError as exc:  # the name of a metric exported already
                    log.warning("plugin counter %s is not exported: %s", counter.name, exc)
                    metric = None
                self._plugin_counters[counter.name] = metric
            if metric is None:
                continue
            for values, total in counter.samples().items():
                key = (counter.name, values)
                delta = total - self._plugin_seen.get(key, 0.0)
                if delta > 0:
                    (self.child(metric, *values) if values else metric).inc(delta)
                self._plugin_seen[key] = total
