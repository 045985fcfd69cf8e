"""Global plugin instances' pre_route runs before routing (ctx.route is None), route instances' after the match."""

import triogate
from triogate.testing import UpstreamServer


class Seen(triogate.Plugin):
    priority = 10
    seen: list[tuple[str | None, str | None]] = []

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> triogate.Response | None:
        Seen.seen.append((self.route, ctx.route_name))
        if ctx.request.path == "/stop":
            return triogate.Response.text("stopped before routing", status=418)
        return None


async def test_global_pre_route_runs_before_routing(upstream: UpstreamServer, gateway_factory) -> None:
    Seen.seen = []
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/api"], "upstream": "u", "plugins": {"seen": {}}}},
        "plugins": {"seen": {}},
    }, plugins={"seen": Seen})
    assert (await gw.client.get("/stop")).status == 418  # no route matches /stop: answered before routing
    assert Seen.seen == [(None, None)]
    Seen.seen = []
    assert (await gw.client.get("/api/x")).status == 200
    assert Seen.seen == [(None, None), ("r", "r")]  # the global instance, then the route's after the match
