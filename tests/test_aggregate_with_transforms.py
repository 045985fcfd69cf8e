"""aggregate composes with request-transform (before it) and response-transform (on its answer)."""

from __future__ import annotations

from triogate import Plugin, Principal, Response, hookimpl
from triogate_aggregate import Aggregate
from triogate_request_transform import RequestTransform
from triogate_response_transform import ResponseTransform


class FakeAuth(Plugin):
    priority = 1000

    @hookimpl
    async def auth(self, ctx):
        ctx.principal = Principal(consumer="acme", claims={"sub": "u-1"})


async def test_aggregated_answer_is_transformed(upstream_factory, gateway_factory) -> None:
    async def users(req):
        return Response.json({"id": 1, "name": "Ada", "tenant": req.headers.get("x-tenant")})

    up = await upstream_factory(users)
    gw = await gateway_factory({
        "upstreams": {"users": {"targets": [{"url": up.url}]}},
        "routes": {"d": {"paths": ["/d"], "plugins": {
            "fake-auth": {},
            # runs first (800 > 50): the header it adds is forwarded by aggregate
            "request-transform": {"add": {"headers": {"x-tenant": "{principal.sub}"}}},
            "aggregate": {"backends": {"user": {"upstream": "users", "path": "/users/1", "group": "user",
                                                 "forward_headers": ["x-tenant"]}}},
            "response-transform": {"rename": {"body": {"user.name": "user.display_name"}},
                                   "add": {"headers": {"x-composed": "yes"}}},
        }}},
    }, plugins={"fake-auth": FakeAuth, "request-transform": RequestTransform, "aggregate": Aggregate,
                "response-transform": ResponseTransform})
    r = await gw.client.get("/d")
    assert r.status == 200, r.content
    assert r.json() == {"user": {"id": 1, "display_name": "Ada", "tenant": "u-1"}}
    assert r.headers["triogate-completed"] == "true"
    assert r.headers["x-composed"] == "yes"
    assert r.headers["content-length"] == str(len(r.content))
