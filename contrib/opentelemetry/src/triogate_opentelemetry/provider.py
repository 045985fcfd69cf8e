"""Building the TracerProvider (sampler, resource, exporter) from the plugin's config."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from .config import OpenTelemetryConfig

__all__ = ["PresetIdGenerator", "make_provider"]


class PresetIdGenerator(RandomIdGenerator):
    """Random ids, except that the next span id can be chosen in advance.

    The upstream call's span id goes into the ``traceparent`` sent upstream before the
    call; its span is recorded afterwards (with the real start and end times) under that id.
    """

    def __init__(self) -> None:
        self.next_span_id: int | None = None

    def fresh_span_id(self) -> int:
        """A new random span id, ignoring any preset."""
        return super().generate_span_id()

    def generate_span_id(self) -> int:
        preset, self.next_span_id = self.next_span_id, None
        return preset if preset is not None else super().generate_span_id()


def make_provider(config: OpenTelemetryConfig, worker: int = 0) -> tuple[TracerProvider, PresetIdGenerator]:
    sampler: Sampler = TraceIdRatioBased(config.sampling_ratio)
    if config.parent_based:
        sampler = ParentBased(sampler)
    attributes = {"service.name": config.service_name, "triogate.worker": worker, **config.resource_attributes}
    ids = PresetIdGenerator()
    provider = TracerProvider(sampler=sampler, resource=Resource.create(attributes), id_generator=ids)
    if config.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=config.endpoint, headers=dict(config.headers), timeout=config.timeout)
        provider.add_span_processor(BatchSpanProcessor(exporter, export_timeout_millis=config.timeout * 1000))
    elif config.exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider, ids
