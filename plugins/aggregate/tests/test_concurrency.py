"""Backends run concurrently; per-backend timeouts, the whole deadline, sequential placeholders."""

from __future__ import annotations

import trio


async def test_three_slow_backends_run_concurrently(backend, aggregate_gateway) -> None:
    a = await backend({"a": 1}, delay=0.1)
    b = await backend({"b": 2}, delay=0.1)
    c = await backend({"c": 3}, delay=0.1)
    gw = await aggregate_gateway({"a": a, "b": b, "c": c}, {"backends": {
        "a": {"upstream": "a", "path": "/a"},
        "b": {"upstream": "b", "path": "/b"},
        "c": {"upstream": "c", "path": "/c"},
    }})
    start = trio.current_time()
    r = await gw.client.get("/agg")
    took = trio.current_time() - start
    assert r.status == 200, r.content
    assert r.json() == {"a": 1, "b": 2, "c": 3}
    assert r.headers["triogate-completed"] == "true"
    assert 0.1 <= took < 0.25, took
    assert [len(s.requests) for s in (a, b, c)] == [1, 1, 1]


async def test_backend_timeout_makes_optional_backend_fail(backend, aggregate_gateway) -> None:
    fast = await backend({"fast": True})
    slow = await backend({"slow": True}, delay=1.0)
    gw = await aggregate_gateway({"fast": fast, "slow": slow}, {"error_details": True, "backends": {
        "fast": {"upstream": "fast", "path": "/"},
        "slow": {"upstream": "slow", "path": "/", "timeout": 0.1, "required": False},
    }})
    start = trio.current_time()
    r = await gw.client.get("/agg")
    took = trio.current_time() - start
    assert r.status == 200
    assert took < 0.5, took
    body = r.json()
    assert body["fast"] is True and "slow" not in body
    assert body["_errors"]["slow"]["error"] == "timeout"
    assert r.headers["triogate-completed"] == "false"
    assert r.headers["cache-control"] == "no-store"


async def test_required_backend_timeout_is_504(backend, aggregate_gateway) -> None:
    fast = await backend({"fast": True})
    slow = await backend({"slow": True}, delay=1.0)
    gw = await aggregate_gateway({"fast": fast, "slow": slow}, {"backends": {
        "fast": {"upstream": "fast", "path": "/"},
        "slow": {"upstream": "slow", "path": "/", "timeout": 0.1},
    }})
    r = await gw.client.get("/agg")
    assert r.status == 504
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["backend"] == "slow" and "request_id" in doc
    assert r.headers["triogate-completed"] == "false"


async def test_whole_deadline_cuts_every_backend(backend, aggregate_gateway) -> None:
    fast = await backend({"fast": True})
    slow1 = await backend({"s1": True}, delay=1.0)
    slow2 = await backend({"s2": True}, delay=1.0)
    gw = await aggregate_gateway({"fast": fast, "s1": slow1, "s2": slow2}, {
        "deadline": 0.15, "error_details": True, "backends": {
            "fast": {"upstream": "fast", "path": "/"},
            "s1": {"upstream": "s1", "path": "/", "timeout": 5, "required": False},
            "s2": {"upstream": "s2", "path": "/", "timeout": 5, "required": False},
        }})
    start = trio.current_time()
    r = await gw.client.get("/agg")
    took = trio.current_time() - start
    assert took < 0.5, took
    assert r.status == 200
    body = r.json()
    assert body["fast"] is True
    assert body["_errors"]["s1"]["error"] == "deadline"
    assert body["_errors"]["s2"]["error"] == "deadline"


async def test_deadline_on_required_backend_is_504(backend, aggregate_gateway) -> None:
    slow = await backend({"s": True}, delay=1.0)
    gw = await aggregate_gateway({"s": slow}, {"deadline": 0.1, "backends": {
        "s": {"upstream": "s", "path": "/", "timeout": 5}}})
    start = trio.current_time()
    r = await gw.client.get("/agg")
    assert trio.current_time() - start < 0.5
    assert r.status == 504
    assert "deadline" in r.json()["detail"]


async def test_failing_required_backend_cancels_the_others(backend, aggregate_gateway) -> None:
    broken = await backend({"e": 1}, status=500)
    slow = await backend({"s": True}, delay=1.0)
    gw = await aggregate_gateway({"broken": broken, "slow": slow}, {"backends": {
        "broken": {"upstream": "broken", "path": "/"},
        "slow": {"upstream": "slow", "path": "/"},
    }})
    start = trio.current_time()
    r = await gw.client.get("/agg")
    assert trio.current_time() - start < 0.5
    assert r.status == 502
    assert r.json()["backend"] == "broken"


async def test_sequential_placeholder_waits_and_independent_ones_do_not(backend, aggregate_gateway) -> None:
    started: dict[str, float] = {}

    def record(name, data):
        def handler(req):
            started[name] = trio.current_time()
            return data(req) if callable(data) else data
        return handler

    user = await backend(record("user", {"id": "u-7", "name": "Ada", "account": {"id": 42}}), delay=0.1)
    orders = await backend(record("orders", lambda req: {"orders_for": req.query}), delay=0.1)
    news = await backend(record("news", {"news": ["x"]}), delay=0.1)
    gw = await aggregate_gateway({"user": user, "orders": orders, "news": news}, {"backends": {
        "user": {"upstream": "user", "path": "/users/{id}"},
        "orders": {"upstream": "orders", "path": "/orders?user={resp.user.id}&account={resp.user.account.id}",
                   "group": "orders"},
        "news": {"upstream": "news", "path": "/news"},
    }}, paths=["/agg/{id}"])
    r = await gw.client.get("/agg/7")
    assert r.status == 200, r.content
    body = r.json()
    assert body["orders"] == {"orders_for": "user=u-7&account=42"}
    assert body["news"] == ["x"] and body["name"] == "Ada"
    assert user.requests[0].path == "/users/7"
    # the handlers record when they answer (after their 100 ms delay): news alongside user,
    # orders only once user had answered
    assert abs(started["news"] - started["user"]) < 0.08
    assert started["orders"] - started["user"] >= 0.1


async def test_dependent_backend_of_failed_backend_is_skipped(backend, aggregate_gateway) -> None:
    user = await backend({"error": "x"}, status=503)
    orders = await backend({"o": 1})
    gw = await aggregate_gateway({"user": user, "orders": orders}, {"error_details": True, "backends": {
        "user": {"upstream": "user", "path": "/u", "required": False},
        "orders": {"upstream": "orders", "path": "/o?u={resp.user.id}", "required": False},
    }})
    r = await gw.client.get("/agg")
    assert r.status == 200
    errs = r.json()["_errors"]
    assert errs["user"] == {"error": "status", "detail": "answered 503", "status": 503}
    assert errs["orders"]["error"] == "dependency"
    assert orders.requests == []
