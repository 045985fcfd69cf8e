"""Header and query rules, in Kong order: remove → rename → replace → add → append."""

from __future__ import annotations


async def test_header_rules(upstream, transform_gateway) -> None:
    gw = await transform_gateway({
        "remove": {"headers": ["x-debug"]},
        "rename": {"headers": {"x-old": "x-new"}},
        "replace": {"headers": {"x-tenant": "acme", "x-absent": "never-added"}},
        "add": {"headers": {"x-user": "{principal.sub}", "x-tenant": "not-used", "x-from": "{header.x-orig}"}},
        "append": {"headers": {"x-tag": "gateway"}},
    })
    r = await gw.client.get("/r", headers=[("x-debug", "1"), ("x-old", "a"), ("x-old", "b"), ("x-new", "stale"),
                                           ("x-tenant", "evil"), ("x-tag", "client"), ("x-test-sub", "u-1"),
                                           ("x-orig", "o")])
    assert r.status == 200, r.content
    h = r.json()["headers"]
    assert "x-debug" not in h and "x-old" not in h and "x-absent" not in h
    assert h["x-new"] == ["a", "b"]
    assert h["x-tenant"] == ["acme"]
    assert h["x-user"] == ["u-1"]
    assert h["x-from"] == ["o"]
    assert h["x-tag"] == ["client", "gateway"]


async def test_missing_template_value_never_keeps_the_client_value(upstream, transform_gateway) -> None:
    gw = await transform_gateway({
        "replace": {"headers": {"x-user": "{principal.sub}"}},
        "add": {"headers": {"x-org": "{principal.org.id}"}},
    })
    # anonymous: the spoofed x-user is dropped rather than forwarded, x-org is not added
    r = await gw.client.get("/r", headers={"x-user": "admin"})
    h = r.json()["headers"]
    assert "x-user" not in h and "x-org" not in h
    r = await gw.client.get("/r", headers={"x-user": "admin", "x-test-sub": "u-2"})
    h = r.json()["headers"]
    assert h["x-user"] == ["u-2"] and h["x-org"] == ["7"]


async def test_header_value_with_control_characters_is_not_sent(upstream, transform_gateway) -> None:
    gw = await transform_gateway({"add": {"headers": {"x-q": "{query.q}"}}})
    r = await gw.client.get("/r?q=a%0d%0aX-Admin:%20yes")
    h = r.json()["headers"]
    assert "x-q" not in h and "x-admin" not in h
    r = await gw.client.get("/r?q=fine")
    assert r.json()["headers"]["x-q"] == ["fine"]


async def test_query_rules_keep_untouched_parameters_as_sent(upstream, transform_gateway) -> None:
    gw = await transform_gateway({
        "remove": {"query": ["debug"]},
        "rename": {"query": {"q": "search"}},
        "replace": {"query": {"limit": "10"}},
        "add": {"query": {"user": "{principal.sub}", "limit": "99"}},
        "append": {"query": {"tag": "gw"}},
    })
    r = await gw.client.get("/r?a=x%20y+z&debug=1&q=hello%26more&limit=500&limit=600&tag=c",
                            headers={"x-test-sub": "a&b=c"})
    assert r.status == 200
    assert r.json()["query"] == "a=x%20y+z&search=hello%26more&limit=10&tag=c&user=a%26b%3Dc&tag=gw"


async def test_query_injection_through_a_template_stays_one_value(upstream, transform_gateway) -> None:
    gw = await transform_gateway({"add": {"query": {"user": "{header.x-name}"}}})
    r = await gw.client.get("/r", headers={"x-name": "x&admin=true#f"})
    assert r.json()["query"] == "user=x%26admin%3Dtrue%23f"
