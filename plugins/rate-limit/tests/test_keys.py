"""What is counted separately: consumer, credential, ip, header, route, path, global; fallbacks; policies."""

import pytest


async def statuses(gw, n, path="/a", headers=None):
    return [(await gw.client.get(path, headers=headers or {})).status for _ in range(n)]


async def test_by_consumer_with_ip_fallback(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["2/minute"], "key": "consumer"}, auth=True), plugins=plugins)
    assert await statuses(gw, 3, headers={"x-user": "ann"}) == [200, 200, 429]
    assert await statuses(gw, 3, headers={"x-user": "bob"}) == [200, 200, 429]
    assert await statuses(gw, 3) == [200, 200, 429]  # anonymous: counted by client ip


async def test_fallback_allow(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "fallback": "allow"}, auth=True),
                               plugins=plugins)
    assert await statuses(gw, 3) == [200, 200, 200]
    assert await statuses(gw, 2, headers={"x-user": "ann"}) == [200, 429]


async def test_by_credential(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "key": "credential"}, auth=True),
                               plugins=plugins)
    assert await statuses(gw, 2, headers={"x-user": "ann", "x-key": "k1"}) == [200, 429]
    assert await statuses(gw, 1, headers={"x-user": "ann", "x-key": "k2"}) == [200]


async def test_by_header(gateway_factory, route_config, plugins):
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "key": "header", "key_header": "X-Tenant",
                                             "fallback": "allow"}), plugins=plugins)
    assert await statuses(gw, 2, headers={"x-tenant": "a"}) == [200, 429]
    assert await statuses(gw, 2, headers={"x-tenant": "b"}) == [200, 429]
    assert await statuses(gw, 2) == [200, 200]


async def test_by_client_ip_trusts_forwarded_for_only_from_trusted_proxies(gateway_factory, route_config, plugins):
    cfg = route_config({"limits": ["1/minute"], "key": "ip"})
    cfg["gateway"] = {"trusted_proxies": ["127.0.0.1/32"]}
    gw = await gateway_factory(cfg, plugins=plugins)
    assert await statuses(gw, 2, headers={"x-forwarded-for": "203.0.113.7"}) == [200, 429]
    assert await statuses(gw, 1, headers={"x-forwarded-for": "203.0.113.8"}) == [200]
    untrusted = route_config({"limits": ["1/minute"], "key": "ip"})
    gw2 = await gateway_factory(untrusted, plugins=plugins)
    assert await statuses(gw2, 1, headers={"x-forwarded-for": "203.0.113.7"}) == [200]
    assert await statuses(gw2, 1, headers={"x-forwarded-for": "203.0.113.8"}) == [429]  # same peer


@pytest.mark.parametrize(("key", "expect"), [("path", [200, 429, 200]), ("route", [200, 429, 429]),
                                             ("global", [200, 429, 429])])
async def test_by_path_route_global(gateway_factory, route_config, plugins, key, expect):
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "key": key}), plugins=plugins)
    got = [(await gw.client.get(p)).status for p in ("/a", "/a", "/b")]
    assert got == expect


async def test_global_instance_counts_per_route(gateway_factory, route_config, plugins, upstream):
    cfg = route_config(None, paths=("/a",), extra={"s": {"paths": ["/b"], "upstream": "u"}},
                       global_plugins={"rate-limit": {"limits": ["1/minute"], "key": "route"}})
    gw = await gateway_factory(cfg, plugins=plugins)
    got = [(await gw.client.get(p)).status for p in ("/a", "/a", "/b", "/b")]
    assert got == [200, 429, 200, 429]


async def test_several_policies_per_route(gateway_factory, route_config, plugins):
    """Per consumer AND per route in one instance: both must allow, a rejection consumes neither."""
    gw = await gateway_factory(route_config({
        "limits": ["2/minute"], "key": "consumer",
        "policies": [{"limits": ["3/minute"], "key": "route"}],
    }, auth=True), plugins=plugins)
    ann, bob, cat = ({"x-user": u} for u in ("ann", "bob", "cat"))
    assert await statuses(gw, 3, headers=ann) == [200, 200, 429]  # ann's own limit
    r = await gw.client.get("/a", headers=bob)
    assert r.status == 200
    assert r.headers.get("ratelimit") == '"consumer-minute";r=1;t={t},"route-minute";r=0;t={t}'.format(
        t=r.headers.get("ratelimit").split("t=")[1].split(",")[0])
    r = await gw.client.get("/a", headers=cat)  # the route's limit of 3 is used up
    assert r.status == 429 and r.json()["violated-policies"] == ["route-minute"]


async def test_the_built_checks_memo_is_bounded_and_keys_stay_apart(gateway_factory, route_config, plugins,
                                                                      monkeypatch):
    """Checks are built once per subject and kept in a memo emptied when full: many subjects (more
    than the memo holds) still each get their own limit."""
    import triogate_rate_limit.plugin as rl

    monkeypatch.setattr(rl, "CHECKS_MEMO_SIZE", 4)
    gw = await gateway_factory(route_config({"limits": ["1/minute"], "key": "header", "key_header": "X-Tenant"}),
                               plugins=plugins)
    for round_ in range(2):
        for i in range(10):
            r = await gw.client.get("/x", headers={"x-tenant": f"t{i}"})
            assert r.status == (200 if round_ == 0 else 429), (round_, i)
    instance = next(p for p in gw.gateway.pipeline.instances if isinstance(p, rl.RateLimitPlugin))
    assert 0 < len(instance._built) <= 4
