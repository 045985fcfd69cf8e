"""Merge rules: root merge and its conflict rule, groups, field rules, targets, collections."""

from __future__ import annotations


async def test_root_merge_last_declared_wins(backend, aggregate_gateway) -> None:
    one = await backend({"id": 1, "name": "one", "a": True})
    two = await backend({"id": 2, "b": True}, delay=0.05)  # arrives later, declared later
    three = await backend({"id": 3, "c": True})  # arrives first, declared last
    gw = await aggregate_gateway({"one": one, "two": two, "three": three}, {"backends": {
        "one": {"upstream": "one", "path": "/"},
        "two": {"upstream": "two", "path": "/"},
        "three": {"upstream": "three", "path": "/"},
    }})
    r = await gw.client.get("/agg")
    assert r.json() == {"id": 3, "name": "one", "a": True, "b": True, "c": True}


async def test_root_merge_first_declared_wins(backend, aggregate_gateway) -> None:
    one = await backend({"id": 1}, delay=0.05)
    two = await backend({"id": 2, "b": True})
    gw = await aggregate_gateway({"one": one, "two": two}, {"conflict": "first-wins", "backends": {
        "one": {"upstream": "one", "path": "/"},
        "two": {"upstream": "two", "path": "/"},
    }})
    r = await gw.client.get("/agg")
    assert r.json() == {"id": 1, "b": True}


async def test_group_puts_each_backend_under_its_key(backend, aggregate_gateway) -> None:
    user = await backend({"id": 1, "name": "Ada"})
    orders = await backend([{"id": "o1"}, {"id": "o2"}])
    gw = await aggregate_gateway({"user": user, "orders": orders}, {"backends": {
        "user": {"upstream": "user", "path": "/", "group": "user"},
        "orders": {"upstream": "orders", "path": "/", "group": "orders"},
    }})
    r = await gw.client.get("/agg")
    assert r.json() == {"user": {"id": 1, "name": "Ada"}, "orders": [{"id": "o1"}, {"id": "o2"}]}


async def test_allow_deny_mapping_and_target(backend, aggregate_gateway) -> None:
    user = await backend({"data": {"user": {"id": 1, "name": "Ada", "email": "a@x", "password_hash": "h",
                                            "address": {"city": "London", "street": "secret"}}}})
    prefs = await backend({"theme": "dark", "internal": 1, "lang": "en"})
    gw = await aggregate_gateway({"user": user, "prefs": prefs}, {"backends": {
        "user": {"upstream": "user", "path": "/", "target": "data.user",
                 "allow": ["id", "name", "email", "address.city"], "mapping": {"email": "contact.email"}},
        "prefs": {"upstream": "prefs", "path": "/", "deny": ["internal"], "mapping": {"lang": "language"},
                  "group": "preferences"},
    }})
    r = await gw.client.get("/agg")
    assert r.json() == {
        "id": 1, "name": "Ada", "contact": {"email": "a@x"}, "address": {"city": "London"},
        "preferences": {"theme": "dark", "language": "en"},
    }


async def test_array_responses_are_wrapped(backend, aggregate_gateway) -> None:
    orders = await backend([{"id": "o1", "secret": 1}, {"id": "o2", "secret": 2}])
    tags = await backend(["a", "b"])
    count = await backend(7)
    gw = await aggregate_gateway({"orders": orders, "tags": tags, "count": count}, {"backends": {
        "orders": {"upstream": "orders", "path": "/", "collection": "items", "deny": ["secret"]},
        "tags": {"upstream": "tags", "path": "/"},
        "count": {"upstream": "count", "path": "/", "collection": "total"},
    }})
    r = await gw.client.get("/agg")
    assert r.json() == {"items": [{"id": "o1"}, {"id": "o2"}], "tags": ["a", "b"], "total": 7}


async def test_collection_inside_group(backend, aggregate_gateway) -> None:
    orders = await backend([{"id": "o1"}])
    gw = await aggregate_gateway({"orders": orders}, {"backends": {
        "orders": {"upstream": "orders", "path": "/", "collection": "items", "group": "orders"},
    }})
    r = await gw.client.get("/agg")
    assert r.json() == {"orders": {"items": [{"id": "o1"}]}}


async def test_missing_target_is_a_backend_error(backend, aggregate_gateway) -> None:
    user = await backend({"nothing": "here"})
    gw = await aggregate_gateway({"user": user}, {"backends": {
        "user": {"upstream": "user", "path": "/", "target": "data.user"}}})
    r = await gw.client.get("/agg")
    assert r.status == 502
    assert "data.user" in r.json()["detail"]


async def test_custom_status_and_forwarded_headers(backend, aggregate_gateway) -> None:
    user = await backend({"id": 1})
    gw = await aggregate_gateway({"user": user}, {"status": 203, "backends": {
        "user": {"upstream": "user", "path": "/", "forward_headers": ["authorization", "accept-language"],
                 "headers": {"x-static": "yes", "x-lang": "{header.accept-language}"}}}})
    r = await gw.client.get("/agg", headers={"authorization": "Bearer t", "accept-language": "fr",
                                             "x-other": "not forwarded"})
    assert r.status == 203
    assert r.headers["content-type"] == "application/json"
    seen = user.requests[0].headers
    assert seen.get("authorization") == "Bearer t"
    assert seen.get("accept-language") == "fr"
    assert seen.get("x-static") == "yes" and seen.get("x-lang") == "fr"
    assert seen.get("x-other") is None
    assert seen.get("x-request-id") == r.headers["x-request-id"]
    assert seen.get("accept") == "application/json"
