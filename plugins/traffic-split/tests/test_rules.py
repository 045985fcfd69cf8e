"""Rules: AND-ed conditions on headers, cookies, query and consumer; first match wins; no match
→ the route's upstream; the rule index in the access log's extra fields."""

from __future__ import annotations

from typing import ClassVar

import triogate
from triogate_traffic_split import TrafficSplitPlugin


class Recorder(TrafficSplitPlugin):
    """The plugin plus a log hook that records what the access-log line gets."""

    seen: ClassVar[list[tuple[object, str | None]]] = []

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        Recorder.seen.append((ctx.log_extra.get("split_rule"), ctx.upstream_name))

RULES = {"rules": [
    {"match": {"headers": {"X-Canary": "1"}}, "upstreams": [{"name": "orders-v2"}]},
    {"match": {"cookies": {"beta": "yes"}, "query": {"v": "3"}}, "upstreams": [{"name": "orders-v3"}]},
    {"match": {"consumers": ["c1", "c2"]}, "upstreams": [{"name": "orders-v3", "weight": 1}]},
]}


async def test_header_rule_routes_to_v2(split) -> None:
    await split.start(RULES)
    assert await split.served({"x-canary": "1"}) == "orders-v2"
    assert await split.served({"x-canary": "0"}) == "orders"      # exact value
    assert await split.served() == "orders"                         # no rule matches: the route's upstream
    assert len(split.servers["orders-v2"].requests) == 1


async def test_conditions_are_anded_and_first_match_wins(split) -> None:
    await split.start(RULES)
    assert await split.served({"cookie": "beta=yes"}, "/api?v=3") == "orders-v3"
    assert await split.served({"cookie": "beta=yes"}, "/api?v=2") == "orders"    # one condition fails
    assert await split.served({"cookie": "beta=no"}, "/api?v=3") == "orders"
    assert await split.served({}, "/api?a=1&v=3") == "orders"                     # cookie missing
    # both the header rule and the cookie+query rule hold: the first listed wins
    assert await split.served({"x-canary": "1", "cookie": "beta=yes"}, "/api?v=3") == "orders-v2"


async def test_consumer_rule_needs_the_authenticated_consumer(split) -> None:
    await split.start(RULES, key_auth=True)
    assert await split.served({"x-api-key": "key-1"}) == "orders-v3"
    assert await split.served({"x-api-key": "key-3"}) == "orders"
    assert await split.served() == "orders"  # anonymous "guest"


async def test_default_rule_takes_the_rest(split) -> None:
    await split.start({"rules": [{"match": {"headers": {"x-canary": "1"}}, "upstreams": [{"name": "orders-v2"}]},
                                 {"upstreams": [{"name": "orders-v3"}]}]})
    assert await split.served({"x-canary": "1"}) == "orders-v2"
    assert await split.served() == "orders-v3"


async def test_rule_index_is_logged(split) -> None:
    Recorder.seen = []
    split.gw = await split.factory(
        {"upstreams": {n: {"targets": [{"url": s.url}]} for n, s in split.servers.items()},
         "routes": {"orders": {"paths": ["/api"], "upstream": "orders", "plugins": {"traffic-split": RULES}}}},
        plugins={"traffic-split": Recorder})
    await split.served({"x-canary": "1"})
    await split.served({"cookie": "beta=yes"}, "/api?v=3")
    await split.served()
    assert Recorder.seen == [(0, "orders-v2"), (1, "orders-v3"), (None, "orders")]
