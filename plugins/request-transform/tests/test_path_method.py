"""Path rewrite with route parameters (one segment each), {rest}, method change."""

from __future__ import annotations


async def test_path_rewrite_with_params(upstream, transform_gateway) -> None:
    gw = await transform_gateway({"path": "/v2/accounts/{id}/profile", "method": "POST"}, paths=["/users/{id}"])
    r = await gw.client.get("/users/42?x=1")
    assert r.status == 200
    data = r.json()
    assert data["path"] == "/v2/accounts/42/profile"
    assert data["method"] == "POST"
    assert data["query"] == "x=1"


async def test_path_param_cannot_escape_its_segment(upstream, transform_gateway) -> None:
    # encoded slashes are refused by default (gateway.paths.encoded_slash); kept, they stay in the segment
    gw = await transform_gateway({"path": "/v2/accounts/{id}"}, paths=["/users/{id}"],
                                 gateway={"paths": {"encoded_slash": "keep"}})
    r = await gw.client.get("/users/a%2Fb%3Fc%23d")
    assert upstream.requests[-1].path == "/v2/accounts/a%2Fb%3Fc%23d"
    assert r.json()["query"] == ""


async def test_path_values_with_dot_segments_are_refused(upstream, transform_gateway) -> None:
    gw = await transform_gateway({"path": "/v2/{query.section}/x"})
    for bad in ("..", "..%2Fadmin", ".", ""):
        r = await gw.client.get(f"/r?section={bad}")
        assert r.status == 400, bad
    assert upstream.requests == []
    r = await gw.client.get("/r?section=ok")
    assert upstream.requests[-1].path == "/v2/ok/x"


async def test_rest_of_the_path(upstream, transform_gateway) -> None:
    gw = await transform_gateway({"path": "/internal/{tenant}/{rest}"}, paths=["/t/{tenant}"])
    r = await gw.client.get("/t/acme/a/b/c")
    assert r.json()["path"] == "/internal/acme/a/b/c"
    r = await gw.client.get("/t/acme")
    assert r.json()["path"] == "/internal/acme/"
