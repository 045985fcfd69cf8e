"""OTLP/HTTP export configured from gateway.toml, against a real HTTP collector on loopback."""

from __future__ import annotations

import triogate
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from triogate_opentelemetry import OpenTelemetryPlugin


async def test_spans_are_exported_over_otlp_http(gateway_factory, upstream, upstream_factory):
    received: list[tuple[triogate.Request, bytes]] = []

    async def collector(request: triogate.Request) -> triogate.Response:
        received.append((request, await request.body.read(1 << 22)))
        return triogate.Response(200, [("content-type", "application/x-protobuf")], b"")

    col = await upstream_factory(collector)
    gw = await gateway_factory({
        "plugins": {"opentelemetry": {
            "endpoint": f"{col.url}/v1/traces",
            "headers": {"x-api-key": "collector-key"},
            "service_name": "edge-gateway",
            "resource_attributes": {"deployment.environment": "test"},
            "timeout": 5.0,
        }},
        "upstreams": {"users": {"targets": [{"url": upstream.url}]}},
        "routes": {"users": {"paths": ["/api/users"], "upstream": "users"}},
    }, plugins={"opentelemetry": OpenTelemetryPlugin})
    for _ in range(3):
        assert (await gw.client.get("/api/users")).status == 200
    await gw.stop()  # the shutdown hook flushes the batch processor

    assert received, "nothing exported"
    names = []
    for request, body in received:
        assert request.method == "POST" and request.path == "/v1/traces"
        assert request.headers.get("content-type") == "application/x-protobuf"
        assert request.headers.get("x-api-key") == "collector-key"
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for rs in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
            assert attrs["service.name"] == "edge-gateway"
            assert attrs["deployment.environment"] == "test"
            for ss in rs.scope_spans:
                names.extend(s.name for s in ss.spans)
    assert names.count("GET users") == 3
    assert names.count("GET") == 3  # the upstream calls
