"""What the shadow receives: the request as the primary receives it, after transforms."""

from typing import Any

MakeGateway = Any


async def test_shadow_gets_what_the_primary_gets(make_gateway: MakeGateway) -> None:
    s = await make_gateway(stamp=True)
    resp = await s.gw.client.post("/api/orders/7?x=1", body=b'{"n": 1}',
                                  headers={"content-type": "application/json", "x-secret": "s", "x-app": "a"})
    assert resp.status == 200
    echoed = resp.json()
    assert echoed["path"] == "/orders/7" and echoed["body"] == 'stamped:{"n": 1}'
    assert s.shadow is not None
    await s.until(lambda: s.plugin.stats.mirrored == 1)
    [copy] = s.shadow.requests
    [first] = s.primary.requests
    assert (copy.method, copy.path, copy.query) == (first.method, first.path, first.query) == ("POST", "/orders/7",
                                                                                                "x=1&stamped=1")
    assert copy.body.data == first.body.data == b'stamped:{"n": 1}'
    # every end-to-end header the primary got, the transform's change included; Host is the shadow's
    skip = {"host", "via", "x-mirrored-by"}
    primary_headers = [(n, v) for n, v in first.headers.raw if n.decode() not in skip]
    shadow_headers = [(n, v) for n, v in copy.headers.raw if n.decode() not in skip]
    assert sorted(shadow_headers) == sorted(primary_headers)
    assert copy.headers.get("x-stamp") == "stamped" and copy.headers.get("x-secret") is None
    assert copy.headers.get("x-mirrored-by") == "triogate" and first.headers.get("x-mirrored-by") is None
    assert copy.headers.get("host") == s.shadow.url.removeprefix("http://")
    assert copy.headers.get("x-request-id") == resp.headers.get("x-request-id")
    assert s.plugin.stats.failed == s.plugin.stats.dropped == s.plugin.stats.skipped == 0


async def test_client_gets_the_primarys_answer(make_gateway: MakeGateway) -> None:
    async def shadow(request):
        return {"from": "shadow"}

    s = await make_gateway(shadow_handler=shadow)
    resp = await s.gw.client.get("/api/a")
    assert resp.status == 200 and resp.json()["path"] == "/a"  # the primary's echo, not the shadow's
    await s.until(lambda: s.plugin.stats.mirrored == 1)


async def test_marker_header_and_rewrite(make_gateway: MakeGateway) -> None:
    s = await make_gateway({"header": "X-Shadow", "header_value": "copy"},
                           route={"paths": ["/api/{id}"], "strip_prefix": None, "rewrite": "/v2/items/{id}"})
    resp = await s.gw.client.get("/api/42?q=1")
    assert resp.json()["path"] == "/v2/items/42"
    await s.until(lambda: s.plugin.stats.mirrored == 1)
    assert s.shadow is not None
    [copy] = s.shadow.requests
    assert (copy.path, copy.query) == ("/v2/items/42", "q=1")
    assert copy.headers.get("x-shadow") == "copy" and copy.headers.get("x-mirrored-by") is None
