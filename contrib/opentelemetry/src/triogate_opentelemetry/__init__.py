"""triogate-opentelemetry: OpenTelemetry tracing for triogate."""

from .config import OpenTelemetryConfig
from .plugin import OpenTelemetryPlugin

__all__ = ["OpenTelemetryConfig", "OpenTelemetryPlugin"]
