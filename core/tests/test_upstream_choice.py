"""ctx.use_upstream: a plugin sends one request to another configured upstream (splits, fallbacks)."""

from __future__ import annotations

import json

import trio

import triogate


class PickByHeader(triogate.Plugin):
    """x-version: 2 goes to upstream "v2"; x-version: nope names an upstream that does not exist."""

    priority = 900

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        version = ctx.request.headers.get("x-version")
        if version == "2":
            ctx.use_upstream("v2")
        elif version == "nope":
            ctx.use_upstream("missing")


def config(v1, v2, log) -> dict:
    return {
        "gateway": {"access_log": str(log)},
        "upstreams": {"v1": {"targets": [{"url": v1.url}]},
                      "v2": {"targets": [{"url": v2.url}], "circuit_breaker": {"failures": 1}}},
        "routes": {"r": {"paths": ["/api"], "upstream": "v1", "strip_prefix": "/api", "plugins": {"pick": {}}}},
    }


async def test_a_plugin_chooses_the_upstream_of_one_request(upstream_factory, gateway_factory, tmp_path) -> None:
    v1, v2 = await upstream_factory(name="v1"), await upstream_factory(name="v2")
    log = tmp_path / "access.log"
    gw = await gateway_factory(config(v1, v2, log), plugins={"pick": PickByHeader})
    with trio.fail_after(10):
        plain = await gw.client.get("/api/a?x=1")
        chosen = await gw.client.get("/api/b?x=2", headers=[("x-version", "2")])
        unknown = await gw.client.get("/api/c", headers=[("x-version", "nope")])
    assert (plain.status, chosen.status) == (200, 200)
    assert [(r.path, r.query) for r in v1.requests] == [("/a", "x=1")]
    # the route's rewrite and proxy headers apply to the chosen upstream too
    assert [(r.path, r.query) for r in v2.requests] == [("/b", "x=2")]
    assert v2.requests[0].headers.get("x-forwarded-for") == "127.0.0.1"
    assert unknown.status == 500 and unknown.json()["plugin"] == "pick"
    await gw.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["path"], x.get("upstream")) for x in lines[:2]] == [("/api/a", "v1"), ("/api/b", "v2")]


async def test_the_chosen_upstream_keeps_its_own_health(upstream_factory, gateway_factory, tmp_path) -> None:
    """v2's circuit opens on its own failures; the route's upstream v1 is not affected."""
    v1 = await upstream_factory(name="v1")

    async def broken(req: triogate.Request) -> triogate.Response:
        return triogate.Response(503, body=b"down")

    v2 = await upstream_factory(broken, name="v2")
    gw = await gateway_factory(config(v1, v2, tmp_path / "access.log"), plugins={"pick": PickByHeader})
    with trio.fail_after(10):
        first = await gw.client.get("/api/x", headers=[("x-version", "2")])
        second = await gw.client.get("/api/x", headers=[("x-version", "2")])
        plain = await gw.client.get("/api/x")
    assert first.status == 503
    assert second.status == 503 and second.headers.get("content-type") == "application/problem+json"
    assert len(v2.requests) == 1  # the open circuit answered the second without calling v2
    assert plain.status == 200 and len(v1.requests) == 1
