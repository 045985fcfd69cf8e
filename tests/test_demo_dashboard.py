"""The README's flagship example: the default gateway.toml's /dashboard/{id} route aggregating the
demo users, orders and payments services (on free loopback ports instead of the fixed demo ones)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from triogate_aggregate import Aggregate
from triogate_demo import SERVICES, make_handler

ROOT = Path(__file__).resolve().parents[1]


async def _dashboard_gateway(upstream_factory, gateway_factory, without: frozenset[str] = frozenset()):
    raw = tomllib.loads((ROOT / "gateway.toml").read_text())
    urls: dict[str, list[dict]] = {}
    for service, instance, port in SERVICES:
        if service in without:
            from triogate.testing import free_port

            urls.setdefault(service, []).append({"url": f"http://127.0.0.1:{free_port()}"})  # nobody listens
            continue
        server = await upstream_factory(make_handler(service, instance), name=instance)
        urls.setdefault(service, []).append({"url": server.url})
    upstreams = raw["upstreams"]
    for name, targets in urls.items():
        upstreams[name]["targets"] = targets
        upstreams[name].pop("health_check", None)
    config = {"upstreams": upstreams, "routes": {"dashboard": raw["routes"]["dashboard"]}}
    return await gateway_factory(config, plugins={"aggregate": Aggregate})


async def test_dashboard_aggregates_three_services(upstream_factory, gateway_factory) -> None:
    gw = await _dashboard_gateway(upstream_factory, gateway_factory)
    r = await gw.client.get("/dashboard/1")
    assert r.status == 200, r.content
    assert r.headers["triogate-completed"] == "true"
    assert r.json() == {
        "user": {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com"},
        "orders": [{"id": "o-100", "item": "analytical engine", "total": 1843.0},
                   {"id": "o-101", "item": "punch cards", "total": 12.5}],
        "payments": [{"id": "p-900", "order": "o-100", "status": "settled"}],
    }
    r = await gw.client.get("/dashboard/9")
    assert r.status == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_dashboard_without_payments_is_partial(upstream_factory, gateway_factory) -> None:
    gw = await _dashboard_gateway(upstream_factory, gateway_factory, frozenset({"payments"}))
    r = await gw.client.get("/dashboard/2")
    assert r.status == 200, r.content
    assert r.headers["triogate-completed"] == "false"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["user"]["name"] == "Grace Hopper"
    assert body["orders"] == [{"id": "o-102", "item": "compiler", "total": 1952.0}]
    assert "payments" not in body
    assert body["_errors"]["payments"]["error"] == "upstream"
