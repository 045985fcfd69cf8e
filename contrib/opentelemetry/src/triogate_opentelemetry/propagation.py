"""W3C trace context (traceparent/tracestate) read from and written to triogate Headers."""

from __future__ import annotations

from typing import Any

from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["GETTER", "PROPAGATOR", "SETTER", "HeadersGetter", "HeadersSetter"]

PROPAGATOR = TraceContextTextMapPropagator()


class HeadersGetter(Getter[Any]):
    def get(self, carrier: Any, key: str) -> list[str] | None:
        values = carrier.get_all(key)
        if not values:
            return None
        if key == "tracestate":
            return [",".join(values)]  # several tracestate lines are one list (RFC 9110 §5.3)
        return list(values)

    def keys(self, carrier: Any) -> list[str]:
        return [name for name, _ in carrier.items()]


class HeadersSetter(Setter[Any]):
    def set(self, carrier: Any, key: str, value: str) -> None:
        carrier.set(key, value)


GETTER = HeadersGetter()
SETTER = HeadersSetter()
