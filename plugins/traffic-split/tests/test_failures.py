"""Failure modes: the chosen upstream down, a global instance, a route without the plugin."""

from __future__ import annotations

from triogate_traffic_split import TrafficSplitPlugin

CANARY = [{"match": {"headers": {"x-canary": "1"}}, "upstreams": [{"name": "dead"}]},
          {"upstreams": [{"name": "orders", "weight": 1}, {"name": "orders-v2", "weight": 1}]}]


async def test_chosen_upstream_down_is_its_own_502_and_the_others_keep_serving(split) -> None:
    cfg = {"upstreams": {**{n: {"targets": [{"url": s.url}], "retries": 0} for n, s in split.servers.items()},
                         "dead": {"targets": [{"url": "http://127.0.0.1:1"}], "retries": 0}},
           "routes": {"orders": {"paths": ["/api"], "upstream": "orders",
                                 "plugins": {"traffic-split": {"rules": CANARY}}}}}
    gw = await split.factory(cfg, plugins={"traffic-split": TrafficSplitPlugin})
    r = await gw.client.get("/api", headers={"x-canary": "1"}, timeout=5)
    assert r.status == 502
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["request_id"]
    served = [(await gw.client.get("/api", timeout=5)).json()["served"] for _ in range(4)]
    assert sorted(served) == ["orders", "orders", "orders-v2", "orders-v2"]


async def test_global_instance_applies_to_every_route_and_a_route_instance_replaces_it(split) -> None:
    up = {n: {"targets": [{"url": s.url}]} for n, s in split.servers.items()}
    cfg = {"upstreams": up,
           "plugins": {"traffic-split": {"rules": [{"match": {"headers": {"x-canary": "1"}},
                                                    "upstreams": [{"name": "orders-v2"}]}]}},
           "routes": {"a": {"paths": ["/a"], "upstream": "orders"},
                      "b": {"paths": ["/b"], "upstream": "orders",
                            "plugins": {"traffic-split": {"rules": [{"upstreams": [{"name": "orders-v3"}]}]}}}}}
    gw = await split.factory(cfg, plugins={"traffic-split": TrafficSplitPlugin})
    assert (await gw.client.get("/a", headers={"x-canary": "1"})).json()["served"] == "orders-v2"
    assert (await gw.client.get("/a")).json()["served"] == "orders"
    assert (await gw.client.get("/b", headers={"x-canary": "1"})).json()["served"] == "orders-v3"
