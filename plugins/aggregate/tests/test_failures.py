"""Partial-failure policies, required/optional, fallback data, non-JSON and oversized bodies."""

from __future__ import annotations

from triogate.testing import free_port


async def test_partial_policy_returns_what_arrived(backend, aggregate_gateway) -> None:
    user = await backend({"name": "Ada"})
    payments = await backend({"e": 1}, status=500)
    gw = await aggregate_gateway({"user": user, "payments": payments}, {"backends": {
        "user": {"upstream": "user", "path": "/"},
        "payments": {"upstream": "payments", "path": "/", "required": False},
    }})
    r = await gw.client.get("/agg")
    assert r.status == 200
    assert r.json() == {"name": "Ada"}  # no details unless error_details = true
    assert r.headers["triogate-completed"] == "false"
    assert r.headers["cache-control"] == "no-store"


async def test_complete_answer_is_not_marked_uncacheable(backend, aggregate_gateway) -> None:
    user = await backend({"name": "Ada"})
    gw = await aggregate_gateway({"user": user}, {"backends": {"user": {"upstream": "user", "path": "/"}}})
    r = await gw.client.get("/agg")
    assert r.headers["triogate-completed"] == "true"
    assert "cache-control" not in r.headers


async def test_fail_policy_fails_on_an_optional_backend(backend, aggregate_gateway) -> None:
    user = await backend({"name": "Ada"})
    payments = await backend({"e": 1}, status=500)
    gw = await aggregate_gateway({"user": user, "payments": payments}, {
        "on_failure": "fail", "error_details": True, "backends": {
            "user": {"upstream": "user", "path": "/"},
            "payments": {"upstream": "payments", "path": "/", "required": False},
        }})
    r = await gw.client.get("/agg")
    assert r.status == 502
    doc = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert doc["backend"] == "payments"
    assert doc["errors"]["payments"] == {"error": "status", "detail": "answered 500", "status": 500}


async def test_unreachable_backend(backend, aggregate_gateway, gateway_factory) -> None:
    user = await backend({"name": "Ada"})

    class Gone:  # an upstream nobody listens on
        url = f"http://127.0.0.1:{free_port()}"

    gw = await aggregate_gateway({"user": user, "gone": Gone}, {"error_details": True, "backends": {
        "user": {"upstream": "user", "path": "/"},
        "gone": {"upstream": "gone", "path": "/", "required": False},
    }})
    r = await gw.client.get("/agg")
    assert r.status == 200
    assert r.json()["_errors"]["gone"]["error"] == "upstream"
    assert r.json()["name"] == "Ada"


async def test_fallback_data_for_an_optional_backend(backend, aggregate_gateway) -> None:
    user = await backend({"name": "Ada"})
    payments = await backend({"e": 1}, status=503)
    gw = await aggregate_gateway({"user": user, "payments": payments}, {"error_details": True, "backends": {
        "user": {"upstream": "user", "path": "/"},
        "payments": {"upstream": "payments", "path": "/", "required": False, "fallback": [],
                     "group": "payments"},
    }})
    r = await gw.client.get("/agg")
    body = r.json()
    assert body["payments"] == []
    assert body["_errors"]["payments"]["fallback"] is True
    assert r.headers["triogate-completed"] == "false"


async def test_required_backend_404_is_404(backend, aggregate_gateway) -> None:
    user = await backend({"error": "no such user"}, status=404)
    gw = await aggregate_gateway({"user": user}, {"backends": {"user": {"upstream": "user", "path": "/"}}})
    r = await gw.client.get("/agg")
    assert r.status == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_non_json_backend_is_an_error(backend, aggregate_gateway) -> None:
    user = await backend({"name": "Ada"})
    html = await backend(raw=b"<html>hi</html>", content_type="text/html")
    gw = await aggregate_gateway({"user": user, "html": html}, {"error_details": True, "backends": {
        "user": {"upstream": "user", "path": "/"},
        "html": {"upstream": "html", "path": "/", "required": False},
    }})
    r = await gw.client.get("/agg")
    assert r.json()["_errors"]["html"]["error"] == "not_json"
    assert "text/html" in r.json()["_errors"]["html"]["detail"]


async def test_invalid_json_with_json_content_type_is_an_error(backend, aggregate_gateway) -> None:
    bad = await backend(raw=b'{"a": 1,', content_type="application/json")
    nan = await backend(raw=b'{"a": NaN}', content_type="application/vnd.x+json")
    gw = await aggregate_gateway({"bad": bad, "nan": nan}, {"error_details": True, "backends": {
        "bad": {"upstream": "bad", "path": "/", "required": False},
        "nan": {"upstream": "nan", "path": "/", "required": False},
    }})
    r = await gw.client.get("/agg")
    assert r.status == 200
    errs = r.json()["_errors"]
    assert errs["bad"]["error"] == "invalid_json"
    assert errs["nan"]["error"] == "invalid_json"


async def test_oversized_backend_body_is_an_error(backend, aggregate_gateway) -> None:
    big = await backend({"blob": "x" * 5000})
    small = await backend({"ok": True})
    gw = await aggregate_gateway({"big": big, "small": small}, {
        "max_body_bytes": 4096, "error_details": True, "backends": {
            "big": {"upstream": "big", "path": "/", "required": False},
            "small": {"upstream": "small", "path": "/", "max_body_bytes": 16},
        }})
    r = await gw.client.get("/agg")
    assert r.status == 200
    assert r.json() == {"ok": True, "_errors": {"big": {
        "error": "too_large", "detail": "response body larger than 4096 bytes", "status": 200}}}
    gw2 = await aggregate_gateway({"big": big}, {"backends": {
        "big": {"upstream": "big", "path": "/", "max_body_bytes": 100}}})
    r2 = await gw2.client.get("/agg")
    assert r2.status == 502
    assert "larger than 100 bytes" in r2.json()["detail"]


async def test_chunked_oversized_body_is_cut_while_streaming(backend, upstream_factory, aggregate_gateway) -> None:
    from triogate import Response

    async def endless(req):
        async def gen():
            for _ in range(1000):
                yield b"[" + b"1," * 500 + b"1]"

        return Response(200, [("content-type", "application/json")], gen())

    stream = await upstream_factory(endless)
    gw = await aggregate_gateway({"s": stream}, {"max_body_bytes": 10_000, "error_details": True, "backends": {
        "s": {"upstream": "s", "path": "/", "required": False}}})
    r = await gw.client.get("/agg")
    assert r.status == 200
    assert r.json()["_errors"]["s"]["error"] == "too_large"


async def test_missing_client_value_for_a_required_backend_is_400(backend, aggregate_gateway) -> None:
    orders = await backend([])
    gw = await aggregate_gateway({"orders": orders}, {"backends": {
        "orders": {"upstream": "orders", "path": "/orders?user={query.user}"}}})
    r = await gw.client.get("/agg")
    assert r.status == 400
    assert "{query.user}" in r.json()["detail"]
    assert orders.requests == []
    r2 = await gw.client.get("/agg?user=3")
    assert r2.status == 200
    assert orders.requests[0].query == "user=3"


async def test_missing_principal_for_an_optional_backend(backend, aggregate_gateway) -> None:
    user = await backend({"name": "Ada"})
    me = await backend({"me": True})
    gw = await aggregate_gateway({"user": user, "me": me}, {"error_details": True, "backends": {
        "user": {"upstream": "user", "path": "/"},
        "me": {"upstream": "me", "path": "/me/{principal.sub}", "required": False},
    }})
    r = await gw.client.get("/agg")
    assert r.status == 200
    assert r.json()["_errors"]["me"]["error"] == "missing_value"
    assert me.requests == []
