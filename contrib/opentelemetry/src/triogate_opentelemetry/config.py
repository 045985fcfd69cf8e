"""Settings of the opentelemetry plugin."""

from __future__ import annotations

from typing import Literal

import attrs
from triogate import setting

__all__ = ["OpenTelemetryConfig"]


@attrs.define(frozen=True)
class OpenTelemetryConfig:
    service_name: str = setting("triogate", description="service.name resource attribute of every span")
    sampling_ratio: float = setting(1.0, description="share of new traces recorded, 0.0 to 1.0")
    parent_based: bool = setting(
        True, description="follow the sampled flag of an incoming traceparent instead of the ratio")
    exporter: Literal["otlp", "console", "none"] = setting(
        "otlp", description="otlp: OTLP over HTTP/protobuf; console: print spans; none: only propagate")
    endpoint: str = setting(
        "http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint (exporter = \"otlp\")")
    headers: dict[str, str] = setting(
        factory=dict, description="headers sent with every export, e.g. an API key (use ${ENV})", secret=True)
    timeout: float = setting(10.0, description="seconds an export may take")
    resource_attributes: dict[str, str] = setting(
        factory=dict, description="extra resource attributes (deployment.environment, service.version, ...)")
    min_hook_ms: float = setting(
        0.1, description="plugin hook calls shorter than this many milliseconds get no span of their own")

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.sampling_ratio <= 1.0:
            raise ValueError(f"sampling_ratio: expected a number from 0.0 to 1.0, got {self.sampling_ratio}")
        if self.timeout <= 0:
            raise ValueError("timeout: expected a number of seconds above 0")
        if self.min_hook_ms < 0:
            raise ValueError("min_hook_ms: expected 0 or more")
        if self.exporter == "otlp" and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint: expected an http:// or https:// URL, got {self.endpoint!r}")
