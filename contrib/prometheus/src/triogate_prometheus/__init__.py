"""triogate-prometheus: Prometheus metrics for triogate, served at /metrics on the admin listener."""

from .config import PrometheusConfig
from .labels import cache_result
from .metrics import METRICS, MetricSpec, exported_names
from .plugin import PrometheusPlugin

__all__ = ["METRICS", "MetricSpec", "PrometheusConfig", "PrometheusPlugin", "cache_result", "exported_names"]
