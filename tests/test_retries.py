"""Retry rules: idempotent methods or connect failures only, to a different target, within the limit."""

from __future__ import annotations

from typing import Any

from triogate import Response
from triogate.testing import ResetConnection, free_port
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends


def config(urls: list[str], **upstream: Any) -> dict:
    return {
        "upstreams": {"u": {"targets": [{"url": u} for u in urls],
                            "circuit_breaker": {"failures": 0}, **upstream}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def resetting(req):
    raise ResetConnection()


async def ok(req):
    body = await req.body.read(16 << 20)
    return Response.json({"ok": True, "body": body.decode()[:100]})


async def test_idempotent_request_is_retried_on_another_target(upstream_factory, gateway_factory):
    bad = await upstream_factory(resetting)
    good = await upstream_factory(ok)
    gw = await gateway_factory(config([bad.url, good.url], retries=1))
    for method in ("GET", "PUT", "DELETE", "HEAD", "OPTIONS"):
        for _ in range(2):  # round-robin: one of the two starts on the bad target
            r = await gw.client.request(method, "/x", body=b"same" if method == "PUT" else None)
            assert r.status == 200, (method, r.content)
    assert {r.method for r in good.requests} == {"GET", "PUT", "DELETE", "HEAD", "OPTIONS"}
    assert all(r.body.data == b"same" for r in good.requests if r.method == "PUT")


async def test_non_idempotent_request_is_not_retried_after_it_was_sent(upstream_factory, gateway_factory):
    bad = await upstream_factory(resetting)
    good = await upstream_factory(ok)
    gw = await gateway_factory(config([bad.url, good.url], retries=3))
    statuses = [(await gw.client.post("/x", body=b"charge once")).status for _ in range(4)]
    assert sorted(statuses) == [200, 200, 502, 502]
    assert len(bad.requests) == 2 and len(good.requests) == 2  # each POST reached exactly one target


async def test_connect_failure_is_retried_even_for_post(upstream_factory, gateway_factory):
    good = await upstream_factory(ok)
    dead = f"http://127.0.0.1:{free_port()}"
    gw = await gateway_factory(config([dead, good.url], retries=1))
    for _ in range(4):
        r = await gw.client.post("/x", body=b"payload")
        assert r.status == 200
        assert r.json()["body"] == "payload"
    assert len(good.requests) == 4


async def test_streamed_body_is_not_replayed(upstream_factory, gateway_factory):
    """A body larger than what the gateway primes is consumed by the failed attempt: no retry."""
    bad = await upstream_factory(resetting)
    good = await upstream_factory(ok)
    gw = await gateway_factory(config([bad.url, good.url], retries=1))
    big = b"y" * (4 << 20)
    statuses = [(await gw.client.request("PUT", "/x", body=big)).status for _ in range(2)]
    assert sorted(statuses) == [200, 502]


async def test_retry_limit_is_respected(upstream_factory, gateway_factory):
    bads = [await upstream_factory(resetting) for _ in range(4)]
    gw = await gateway_factory(config([b.url for b in bads], retries=2))
    r = await gw.client.get("/x")
    assert r.status == 502
    tried = [len(b.requests) for b in bads]
    # 3 attempts in all, each on a different target (a stale-connection retry never applies: fresh connections)
    assert sorted(tried) == [0, 1, 1, 1]


async def test_no_retries_when_disabled(upstream_factory, gateway_factory):
    bad = await upstream_factory(resetting)
    good = await upstream_factory(ok)
    gw = await gateway_factory(config([bad.url, good.url], retries=0))
    statuses = [(await gw.client.get("/x")).status for _ in range(2)]
    assert sorted(statuses) == [200, 502]


async def test_upstream_error_statuses_are_not_retried(upstream_factory, gateway_factory):
    async def unavailable(req):
        return Response(503, [], b"busy")

    a = await upstream_factory(unavailable)
    b = await upstream_factory(unavailable)
    gw = await gateway_factory(config([a.url, b.url], retries=1))
    r = await gw.client.get("/x")
    assert r.status == 503 and r.content == b"busy"
    assert len(a.requests) + len(b.requests) == 1


async def test_retry_budget_stops_retries_from_multiplying_load(upstream_factory, gateway_factory):
    """With no budget left, a failing target's errors are not retried elsewhere."""
    bad = await upstream_factory(resetting)
    good = await upstream_factory(ok)
    gw = await gateway_factory(config([bad.url, good.url], retries=1, retry_budget=0.0, min_retries_per_second=0.0))
    upstream = gw.gateway.pipeline.upstreams["u"]
    upstream.budget.tokens = 1.0  # exactly one retry in the bucket
    statuses = [(await gw.client.get("/x")).status for _ in range(4)]
    # two requests start on the bad target: the first is retried (the last token), the second is not
    assert sorted(statuses) == [200, 200, 200, 502]
    assert len(bad.requests) == 2


async def test_retry_budget_refills_with_traffic(upstream_factory, gateway_factory):
    bad = await upstream_factory(resetting)
    good = await upstream_factory(ok)
    gw = await gateway_factory(config([bad.url, good.url], retries=1, retry_budget=0.5, min_retries_per_second=0.0))
    upstream = gw.gateway.pipeline.upstreams["u"]
    upstream.budget.tokens = 0.0
    # every request deposits half a token: after two requests there is one retry to spend
    statuses = [(await gw.client.get("/x")).status for _ in range(4)]
    assert statuses.count(502) == 1  # the first request on the bad target found an empty bucket
    assert statuses.count(200) == 3
