"""Spans, their parent/child relations, and the trace context sent upstream."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from triogate.testing import free_port

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def by_kind(spans, kind):
    return [s for s in spans if s.kind is kind]


def parse_tp(tp: str) -> tuple[str, str, bool]:
    """(trace id, parent span id, sampled) of a traceparent value (other flag bits, e.g. random, ignored)."""
    version, trace_id, span_id, flags = tp.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16 and len(flags) == 2
    return trace_id, span_id, bool(int(flags, 16) & 1)


def traceparent_of(fetched) -> list[str]:
    echoed = fetched.json()["headers"]
    return echoed.get("traceparent", [])


async def test_server_hook_and_upstream_spans(traced_gateway, log_extra, upstream):
    t = await traced_gateway()
    r = await t.gw.client.get("/api/users/1", headers={"user-agent": "pytest"})
    assert r.status == 200
    spans = await t.spans(3)
    (server,) = by_kind(spans, SpanKind.SERVER)
    (client,) = by_kind(spans, SpanKind.CLIENT)
    internal = by_kind(spans, SpanKind.INTERNAL)
    assert [s.name for s in internal] == ["slowauth auth"]   # hooks under min_hook_ms get no span
    (auth,) = internal

    sc = server.context
    assert server.parent is None
    assert server.name == "GET users"
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["url.path"] == "/api/users/1"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["triogate.route"] == "users"
    assert server.attributes["triogate.consumer"] == "alice"
    assert server.attributes["user_agent.original"] == "pytest"
    assert server.resource.attributes["service.name"] == "triogate"
    assert server.status.status_code is StatusCode.UNSET

    for child in (auth, client):
        assert child.context.trace_id == sc.trace_id
        assert child.parent.span_id == sc.span_id
    assert auth.attributes["triogate.plugin"] == "slowauth" and auth.attributes["triogate.phase"] == "auth"
    assert (auth.end_time - auth.start_time) >= 15_000_000
    assert server.start_time <= auth.start_time <= auth.end_time <= client.start_time
    assert client.end_time <= server.end_time
    assert client.attributes["triogate.upstream"] == "users"
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["server.port"] == upstream.port
    assert client.attributes["http.response.status_code"] == 200

    # the upstream got a traceparent naming the upstream-call span
    (tp,) = traceparent_of(r)
    assert parse_tp(tp) == (trace.format_trace_id(sc.trace_id), trace.format_span_id(client.context.span_id), True)
    assert "tracestate" not in r.json()["headers"]

    # trace ids go to the access log through ctx.log_extra
    assert log_extra[-1]["trace_id"] == trace.format_trace_id(sc.trace_id)
    assert log_extra[-1]["span_id"] == trace.format_span_id(sc.span_id)


async def test_incoming_trace_context_is_continued(traced_gateway):
    t = await traced_gateway()
    r = await t.gw.client.get("/api/users/1", headers={
        "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
        "tracestate": "vendor=abc,other=1",
    })
    assert r.status == 200
    spans = await t.spans(3)
    (server,) = by_kind(spans, SpanKind.SERVER)
    (client,) = by_kind(spans, SpanKind.CLIENT)
    assert trace.format_trace_id(server.context.trace_id) == CLIENT_TRACE
    assert server.parent is not None and server.parent.is_remote
    assert trace.format_span_id(server.parent.span_id) == CLIENT_SPAN
    echoed = r.json()["headers"]
    (tp,) = echoed["traceparent"]
    assert parse_tp(tp) == (CLIENT_TRACE, trace.format_span_id(client.context.span_id), True)
    assert echoed["tracestate"] == ["vendor=abc,other=1"]


async def test_unsampled_requests_still_propagate(traced_gateway, log_extra):
    t = await traced_gateway(sampling_ratio=0.0)
    r = await t.gw.client.get("/api/users/1")
    assert r.status == 200
    (tp,) = traceparent_of(r)
    trace_id, span_id, sampled = parse_tp(tp)
    assert not sampled
    assert trace_id != "0" * 32 and span_id != "0" * 16
    import trio

    with trio.fail_after(5):
        while not log_extra:  # the log hook runs after the response went out
            await trio.sleep(0.005)
    assert log_extra[-1]["trace_id"] == trace_id
    # a sampled parent wins over the ratio (parent_based = true)
    r = await t.gw.client.get("/api/users/1", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    spans = await t.spans(3)
    assert {trace.format_trace_id(s.context.trace_id) for s in spans} == {CLIENT_TRACE}
    assert parse_tp(traceparent_of(r)[0])[2] is True


async def test_ratio_only_ignores_the_parent_flag(traced_gateway):
    import trio

    t = await traced_gateway(sampling_ratio=0.0, parent_based=False)
    r = await t.gw.client.get("/api/users/1", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    assert r.status == 200
    (tp,) = traceparent_of(r)
    assert parse_tp(tp)[0] == CLIENT_TRACE and parse_tp(tp)[2] is False
    await trio.sleep(0.05)
    assert t.exporter.get_finished_spans() == ()


async def test_short_circuit_has_no_upstream_span(traced_gateway):
    t = await traced_gateway()
    r = await t.gw.client.get("/api/users/1", headers={"x-deny": "1"})
    assert r.status == 401
    spans = await t.spans(2)
    (server,) = by_kind(spans, SpanKind.SERVER)
    assert by_kind(spans, SpanKind.CLIENT) == []
    (auth,) = by_kind(spans, SpanKind.INTERNAL)
    assert auth.attributes["triogate.short_circuit"] is True
    assert server.attributes["http.response.status_code"] == 401
    assert server.attributes["triogate.short_circuit.plugin"] == "slowauth"
    assert server.attributes["triogate.short_circuit.phase"] == "auth"
    assert server.status.status_code is StatusCode.UNSET


async def test_failed_upstream_call(traced_gateway):
    routes = {"down": {"paths": ["/down"], "upstream": "down"}}
    upstreams = {"down": {"targets": [{"url": f"http://127.0.0.1:{free_port()}"}], "retries": 0}}
    t = await traced_gateway(routes=routes, upstreams=upstreams)
    r = await t.gw.client.get("/down")
    assert r.status in (502, 503)
    spans = await t.spans(2)
    (server,) = by_kind(spans, SpanKind.SERVER)
    (client,) = by_kind(spans, SpanKind.CLIENT)
    assert client.parent.span_id == server.context.span_id
    assert client.status.status_code is StatusCode.ERROR
    assert "server.address" not in client.attributes
    assert server.status.status_code is StatusCode.ERROR
    assert server.start_time <= client.start_time <= client.end_time <= server.end_time


async def test_unmatched_requests_get_a_span(traced_gateway):
    t = await traced_gateway()
    r = await t.gw.client.get("/nowhere")
    assert r.status == 404
    (server,) = await t.spans(1)
    assert server.name == "GET" and server.attributes["http.response.status_code"] == 404
    assert "triogate.route" not in server.attributes
