"""Hook ordering (priority, per-route `priorities`, route instance over global), local hook
modules, short-circuit in each phase with post_response still running, body wrapping."""

from __future__ import annotations

import types
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import triogate
from triogate.testing import UpstreamServer

TRAILS: dict[str, list[str]] = {}


class Rec(triogate.Plugin):
    """Records every hook call in TRAILS[request_id]; may answer in one phase."""

    @attrs.define(frozen=True)
    class Config:
        label: str = triogate.setting("", description="name in the trail (default: the plugin name)")
        answer_in: str = triogate.setting("", description="phase in which to answer 299")

    def mark(self, ctx: triogate.Context, phase: str) -> triogate.Response | None:
        label = self.config.label or self.name
        TRAILS.setdefault(ctx.request_id, []).append(
            f"{phase}:{label}" + (f"@{ctx.route_name}" if phase == "pre_route" else ""))
        if self.config.answer_in == phase:
            return triogate.Response.text(f"answered by {label} in {phase}", status=299)
        return None

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> triogate.Response | None:
        return self.mark(ctx, "pre_route")

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> triogate.Response | None:
        return self.mark(ctx, "auth")

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> triogate.Response | None:
        return self.mark(ctx, "transform")

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        self.mark(ctx, "post_response")

    @triogate.hookimpl
    async def log(self, ctx: triogate.Context) -> None:
        self.mark(ctx, "log")


class A(Rec):
    priority = 300


class B(Rec):
    priority = 200


class C(Rec):
    priority = 100


PLUGINS = {"a": A, "b": B, "c": C}

HOOK_MODULE = '''
import triogate
from test_hooks_order_support import record

PRIORITY = 250

@triogate.hookimpl
async def pre_route(ctx):
    record(ctx, "pre_route:hooks@" + str(ctx.route_name))

@triogate.hookimpl
async def auth(ctx):
    record(ctx, "auth:hooks")

@triogate.hookimpl
async def post_response(ctx, response):
    record(ctx, "post_response:hooks")
    response.headers.set("x-hooks", "yes")
'''


def record(ctx: triogate.Context, entry: str) -> None:
    TRAILS.setdefault(ctx.request_id, []).append(entry)


async def trail_of(r: triogate.Fetched, last: str) -> list[str]:
    """The trail of one request, once its log phase (after the response was sent) finished."""
    rid = r.headers["x-request-id"]
    with trio.fail_after(5):
        while last not in TRAILS.get(rid, []):
            await trio.sleep(0.005)
    return TRAILS[rid]


@pytest.fixture
def hook_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    support = types.ModuleType("test_hooks_order_support")
    support.record = record  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "test_hooks_order_support", support)
    path = tmp_path / "my_hooks.py"
    path.write_text(HOOK_MODULE)
    return path


def base_config(upstream: UpstreamServer, hook_file: Path) -> dict:
    return {
        "gateway": {"hooks": [str(hook_file)]},
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {"a": {}, "b": {}, "c": {}},
        "routes": {
            "r": {"paths": ["/r"], "upstream": "u"},
            # b overridden on this route, c moved first, a moved last
            "s": {"paths": ["/s"], "upstream": "u", "plugins": {"b": {"label": "b-route"}},
                  "priorities": {"c": 1000, "a": -5}},
        },
    }


async def test_order_by_priority_with_hook_module_and_route_overrides(
    upstream: UpstreamServer, gateway_factory, hook_file: Path,
) -> None:
    gw = await gateway_factory(base_config(upstream, hook_file), plugins=PLUGINS)
    r = await gw.client.get("/r")
    assert r.status == 200 and r.headers["x-hooks"] == "yes"
    assert await trail_of(r, "log:c") == [
        # global instances and hook modules: pre_route before routing (no route yet)
        "pre_route:a@None", "pre_route:hooks@None", "pre_route:b@None", "pre_route:c@None",
        "auth:a", "auth:hooks", "auth:b", "auth:c",
        "transform:a", "transform:b", "transform:c",
        # onion: the innermost (lowest priority) sees the response first
        "post_response:c", "post_response:b", "post_response:hooks", "post_response:a",
        "log:a", "log:b", "log:c",
    ]
    s = await gw.client.get("/s")
    assert await trail_of(s, "log:a") == [
        "pre_route:a@None", "pre_route:hooks@None", "pre_route:b@None", "pre_route:c@None",
        "pre_route:b-route@s",  # route instances' pre_route: right after the match
        "auth:c", "auth:hooks", "auth:b-route", "auth:a",
        "transform:c", "transform:b-route", "transform:a",
        "post_response:a", "post_response:b-route", "post_response:hooks", "post_response:c",
        "log:c", "log:b-route", "log:a",
    ]
    route = next(rt for rt in gw.gateway.pipeline.router.routes if rt.name == "s")
    assert route.chain.order == ["c", "hooks:" + str(hook_file), "b", "a"]


async def test_priority_key_in_a_plugin_table_overrides_the_class_priority(
    upstream: UpstreamServer, gateway_factory,
) -> None:
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"c": {"priority": 999}, "a": {}}}},
    }, plugins=PLUGINS)
    r = await gw.client.get("/")
    assert [e for e in await trail_of(r, "log:a") if e.startswith("auth")] == ["auth:c", "auth:a"]


POST_AND_LOG = ["post_response:c", "post_response:x", "post_response:b", "post_response:a",
                "log:a", "log:b", "log:x", "log:c"]


@pytest.mark.parametrize(("where", "expected"), [
    # a global instance answers before routing: no route hook runs, the global chain's post_response does
    ("global-pre_route", [
        "pre_route:a@None", "pre_route:x@None",
        "post_response:b", "post_response:x", "post_response:a", "log:a", "log:x", "log:b"]),
    ("pre_route", [
        "pre_route:a@None", "pre_route:b@None", "pre_route:x@r", *POST_AND_LOG]),
    ("auth", [
        "pre_route:a@None", "pre_route:b@None", "pre_route:x@r", "pre_route:c@r",
        "auth:a", "auth:b", "auth:x", *POST_AND_LOG]),
    ("transform", [
        "pre_route:a@None", "pre_route:b@None", "pre_route:x@r", "pre_route:c@r",
        "auth:a", "auth:b", "auth:x", "auth:c", "transform:a", "transform:b", "transform:x", *POST_AND_LOG]),
])
async def test_short_circuit_in_each_phase(upstream: UpstreamServer, gateway_factory, where: str,
                                           expected: list[str]) -> None:
    """x (priority 150, between b and c) answers; later hooks of the phase and later phases do not run,
    post_response and log still run for every plugin of the chain."""

    class X(Rec):
        priority = 150

    answering = {"x": {"answer_in": "pre_route" if where == "global-pre_route" else where}}
    if where == "global-pre_route":
        plugins, route_plugins = {"a": {}, **answering, "b": {"priority": 50}}, {"c": {}}
    else:
        plugins, route_plugins = {"a": {}, "b": {}}, {**answering, "c": {}}
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": plugins,
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": route_plugins}},
    }, plugins={**PLUGINS, "x": X})
    r = await gw.client.get("/")
    assert (r.status, r.content) == (299, f"answered by x in {answering['x']['answer_in']}".encode())
    assert await trail_of(r, expected[-1]) == expected
    assert upstream.requests == []


async def test_several_auth_plugins_are_an_or_and_401_carries_every_challenge(
    upstream: UpstreamServer, gateway_factory,
) -> None:
    class Challenger(triogate.Plugin):
        priority = 1000

        @attrs.define(frozen=True)
        class Config:
            scheme: str = triogate.setting(description="challenge")
            accept: str = triogate.setting("", description="credential accepted")

        @triogate.hookimpl
        async def auth(self, ctx: triogate.Context) -> None:
            if self.config.accept and ctx.request.headers.get("authorization") == self.config.accept:
                ctx.principal = triogate.Principal(consumer=self.name, method=self.name)
            else:
                ctx.challenge(f'{self.config.scheme} realm="triogate"')

    class Post(triogate.Plugin):
        @triogate.hookimpl
        async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
            response.headers.set("x-post", "ran")

    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {"post": {}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {
            "one": {"scheme": "Bearer"}, "two": {"scheme": "Basic", "accept": "Basic dTpw"}}}},
    }, plugins={"one": Challenger, "two": Challenger, "post": Post})
    r = await gw.client.get("/")
    assert r.status == 401
    assert r.headers.get_all("www-authenticate") == ['Bearer realm="triogate"', 'Basic realm="triogate"']
    assert r.headers["x-post"] == "ran"
    assert r.headers["content-type"] == "application/problem+json"
    ok = await gw.client.get("/", headers={"authorization": "Basic dTpw"})
    assert ok.status == 200 and ok.headers["x-post"] == "ran"
    assert len(upstream.requests) == 1


async def test_post_response_wraps_the_body_stream_without_buffering(upstream_factory, gateway_factory) -> None:
    more = trio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk;"
        await more.wait()
        yield b"second chunk"

    async def handler(req: triogate.Request) -> triogate.Response:
        return triogate.Response(200, [("content-type", "text/plain")], chunks())

    class Upper(triogate.Plugin):
        @triogate.hookimpl
        async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
            async def upper(body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
                async for chunk in body:
                    yield chunk.upper()

            response.headers.remove("content-length")
            response.body = response.body.wrap(upper)

    up = await upstream_factory(handler)
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": up.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"upper": {}}}},
    }, plugins={"upper": Upper})
    resp = await gw.client.stream("GET", "/")
    try:
        it = resp.body.__aiter__()
        with trio.fail_after(5):
            first = await it.__anext__()  # arrives while the upstream still holds back the rest
        assert first == b"FIRST CHUNK;"
        more.set()
        rest = b""
        with trio.fail_after(5):
            async for chunk in it:
                rest += chunk
        assert rest == b"SECOND CHUNK"
    finally:
        await resp.body.aclose()


async def test_post_response_may_replace_the_response(upstream: UpstreamServer, gateway_factory) -> None:
    class Replace(triogate.Plugin):
        @triogate.hookimpl
        async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> triogate.Response:
            return triogate.Response.json({"replaced": response.status}, status=203)

    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"replace": {}}}},
    }, plugins={"replace": Replace})
    r = await gw.client.get("/")
    assert (r.status, r.json()) == (203, {"replaced": 200})
    assert r.headers["x-request-id"]
    r = await gw.client.get("/")
    assert r.status == 203
    assert len(upstream.requests) == 2
