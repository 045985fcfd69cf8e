"""Rules: AND-ed conditions on headers, cookies, query and consumer; first match wins; no match
→ the route's upstream; the rule index in the access log's extra fields."""

from __future__ import annotations

import json

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


async def test_access_log_names_the_upstream_and_the_rule(split, tmp_path) -> None:
    log = tmp_path / "access.log"
    await split.start(RULES, gateway={"access_log": str(log)})
    await split.served({"x-canary": "1"})
    await split.served({"cookie": "beta=yes"}, "/api?v=3")
    await split.served()
    assert split.gw is not None
    await split.gw.stop()  # flushes the log
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e.get("split_rule"), e["upstream"]) for e in lines] == [(0, "orders-v2"), (1, "orders-v3"),
                                                                     (None, "orders")]
