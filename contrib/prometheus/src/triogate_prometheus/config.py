"""Settings of the prometheus plugin."""

from __future__ import annotations

import attrs
from triogate import setting

__all__ = ["PrometheusConfig"]


@attrs.define(frozen=True)
class PrometheusConfig:
    path: str = setting("/metrics", description="admin API path the metrics are served on")
    consumer_label: bool = setting(
        False, description="label triogate_requests_total by consumer (bounded by max_consumers)")
    max_consumers: int = setting(
        100, description="distinct consumer label values before further consumers are counted as \"other\"")
    max_reasons: int = setting(
        50, description="distinct auth-failure reason values before further ones are counted as \"other\"")
    sample_interval: float = setting(
        5.0, description="seconds between gauge samples (upstream health, connections) in multi-process mode")

    def __attrs_post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"path: expected a path starting with /, got {self.path!r}")
        if self.max_consumers < 1 or self.max_reasons < 1:
            raise ValueError("max_consumers and max_reasons: expected at least 1")
        if self.sample_interval <= 0:
            raise ValueError("sample_interval: expected a number of seconds above 0")
