"""GatewayServices.forward: a plugin sends a request to the route's upstream outside the phases."""

import trio

import triogate
from triogate.testing import UpstreamServer


class Twice(triogate.Plugin):
    """Calls the upstream itself (as a cache revalidating in the background would), then lets the request go on."""

    priority = 100
    seen: list[triogate.Fetched] = []

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        req = ctx.request
        copy = triogate.Request("GET", req.path, req.query, req.headers.copy(), client=req.client)
        other = triogate.Context(copy, ctx.gateway, ctx.request_id, ctx.client_ip)
        other.route, other.params, other.rest = ctx.route, ctx.params, ctx.rest
        resp = await ctx.gateway.forward(other)
        try:
            body = await resp.body.read(1 << 20)
        finally:
            await resp.body.aclose()
        Twice.seen.append(triogate.Fetched(resp.status, resp.headers, body))


async def test_forward_applies_the_route_rewrite_and_proxy_headers(upstream: UpstreamServer, gateway_factory) -> None:
    Twice.seen = []
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/api"], "upstream": "u", "strip_prefix": "/api",
                         "plugins": {"twice": {}}}},
    }, plugins={"twice": Twice})
    with trio.fail_after(10):
        r = await gw.client.get("/api/thing?a=1")
    assert r.status == 200
    assert len(upstream.requests) == 2
    (side,) = Twice.seen
    assert side.status == 200
    data = side.json()
    assert data["path"] == "/thing" and data["query"] == "a=1"
    assert data["headers"]["x-forwarded-for"] == ["127.0.0.1"]
    assert "via" in side.headers
