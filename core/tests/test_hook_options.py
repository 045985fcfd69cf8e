"""pluggy's hookimpl options: tryfirst/trylast and specname are honoured, optionalhook keeps
pluggy's meaning, wrapper/hookwrapper are refused at load and at `triogate check`.

Orders are observed in real requests through a running gateway (a recording of every call)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trio
import triogate
from triogate.plugins import PluginRegistry
from triogate.testing import UpstreamServer

TRAILS: dict[str, list[str]] = {}
STARTS: list[str] = []
PHASES = ("pre_route", "auth", "transform", "post_response", "log")


def recorder(priority: int, *, first: tuple[str, ...] = (), last: tuple[str, ...] = ()) -> type[triogate.Plugin]:
    """A plugin class recording each hook call as ``phase:name``; ``@hookimpl(tryfirst=True)`` on
    the hooks named in ``first``, ``trylast=True`` on those in ``last``."""

    def mark(hook: str) -> Any:
        return triogate.hookimpl(tryfirst=hook in first, trylast=hook in last)

    class Recorder(triogate.Plugin):
        @mark("startup")
        async def startup(self, gateway: triogate.GatewayServices, nursery: trio.Nursery) -> None:
            STARTS.append(self.name)

        def note(self, ctx: triogate.Context, phase: str) -> None:
            TRAILS.setdefault(ctx.request_id, []).append(f"{phase}:{self.name}")

        @mark("pre_route")
        async def pre_route(self, ctx: triogate.Context) -> None:
            self.note(ctx, "pre_route")

        @mark("auth")
        async def auth(self, ctx: triogate.Context) -> None:
            self.note(ctx, "auth")

        @mark("transform")
        async def transform(self, ctx: triogate.Context) -> None:
            self.note(ctx, "transform")

        @mark("post_response")
        async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
            self.note(ctx, "post_response")

        @mark("log")
        async def log(self, ctx: triogate.Context) -> None:
            self.note(ctx, "log")

    Recorder.priority = priority
    return Recorder


EVERY = ("startup", *PHASES)
PLUGINS = {
    "last": recorder(1000, last=EVERY),  # the highest priority, but trylast on every hook
    "hi": recorder(300),
    "mid": recorder(200, last=("transform",)),  # trylast on one hook only
    "first2": recorder(50, first=EVERY),
    "first": recorder(10, first=EVERY),  # the lowest priority, but tryfirst on every hook
}


async def trail_of(r: triogate.Fetched) -> list[str]:
    """The calls of one request, once its log phase (after the response was sent) finished."""
    rid = r.headers["x-request-id"]
    with trio.fail_after(5):
        while sum(e.startswith("log:") for e in TRAILS.get(rid, [])) < len(PLUGINS):
            await trio.sleep(0.005)
    return TRAILS[rid]


def by_phase(trail: list[str]) -> dict[str, list[str]]:
    return {p: [e.split(":")[1] for e in trail if e.startswith(p + ":")] for p in PHASES}


async def test_tryfirst_and_trylast_beat_priority_and_order_among_themselves_by_priority(
    upstream: UpstreamServer, gateway_factory,
) -> None:
    STARTS.clear()
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {name: {} for name in PLUGINS},
        "routes": {
            "r": {"paths": ["/r"], "upstream": "u"},
            # a route's priorities reorder within a band, never across: hi stays after the tryfirst ones
            "s": {"paths": ["/s"], "upstream": "u", "priorities": {"first": 100, "hi": 9999}},
        },
    }, plugins=PLUGINS)
    assert STARTS == ["first2", "first", "hi", "mid", "last"]  # startup honours them too

    r = await gw.client.get("/r")
    assert r.status == 200
    assert by_phase(await trail_of(r)) == {
        "pre_route": ["first2", "first", "hi", "mid", "last"],
        "auth": ["first2", "first", "hi", "mid", "last"],
        # trylast ones among themselves: by priority (last 1000, then mid 200)
        "transform": ["first2", "first", "hi", "last", "mid"],
        # the onion (lowest priority first) within each band; tryfirst still called first, trylast last
        "post_response": ["first", "first2", "mid", "hi", "last"],
        "log": ["first2", "first", "hi", "mid", "last"],
    }

    s = await gw.client.get("/s")
    assert s.status == 200
    assert by_phase(await trail_of(s)) == {
        "pre_route": ["first2", "first", "hi", "mid", "last"],  # global pre_route: before routing, no override
        "auth": ["first", "first2", "hi", "mid", "last"],
        "transform": ["first", "first2", "hi", "last", "mid"],
        "post_response": ["first2", "first", "mid", "hi", "last"],
        "log": ["first", "first2", "hi", "mid", "last"],
    }
    # the order `triogate routes` shows is the priority order; options act per hook
    route = next(rt for rt in gw.gateway.pipeline.router.routes if rt.name == "s")
    assert route.chain.order == ["hi", "last", "mid", "first", "first2"]


async def test_tryfirst_on_a_route_instance_and_a_global_one(upstream: UpstreamServer, gateway_factory) -> None:
    """Route instances and global ones share one band: a route's tryfirst instance at priority 1
    runs before a global one at 1000 that is not tryfirst."""
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {"last": {"priority": 5}, "hi": {}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"first": {"priority": 1}, "mid": {}}}},
    }, plugins=PLUGINS)
    r = await gw.client.get("/")
    rid = r.headers["x-request-id"]
    with trio.fail_after(5):
        while sum(e.startswith("log:") for e in TRAILS.get(rid, [])) < 4:
            await trio.sleep(0.005)
    assert by_phase(TRAILS[rid])["auth"] == ["first", "hi", "mid", "last"]


class Checked(triogate.Plugin):
    priority = 500

    @triogate.hookimpl(specname="auth")
    async def require_key(self, ctx: triogate.Context) -> triogate.Response | None:
        TRAILS.setdefault(ctx.request_id, []).append("auth:checked")
        if ctx.request.headers.get("x-key") != "k":
            return ctx.problem(401, "no key")
        return None


async def test_specname_implements_the_named_hook(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {"hi": {}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"checked": {}}}},
    }, plugins={"checked": Checked, "hi": PLUGINS["hi"]})
    assert (await gw.client.get("/")).status == 401
    r = await gw.client.get("/", headers={"x-key": "k"})
    assert r.status == 200
    rid = r.headers["x-request-id"]
    with trio.fail_after(5):
        while "log:hi" not in TRAILS.get(rid, []):
            await trio.sleep(0.005)
    assert [e for e in TRAILS[rid] if e.startswith("auth:")] == ["auth:checked", "auth:hi"]
    reg = PluginRegistry(autoload=False)
    reg.register("checked", Checked)
    assert reg.get("checked").hooks == ["auth"]  # what `triogate plugins` lists


class Optional(triogate.Plugin):
    @triogate.hookimpl(optionalhook=True)
    async def on_cache_miss(self, ctx: triogate.Context) -> None:
        raise AssertionError("no triogate hook is called on_cache_miss")

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        ctx.state["transform ran"] = True


async def test_optionalhook_keeps_pluggys_meaning(upstream: UpstreamServer, gateway_factory) -> None:
    """An implementation of a hook nobody specified loads (pluggy's optionalhook) and is never called."""
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {"optional": {}}}},
    }, plugins={"optional": Optional})
    assert (await gw.client.get("/")).status == 200


# --------------------------------------------------------------------------- refused options


class Wrapper(triogate.Plugin):
    @triogate.hookimpl(wrapper=True)
    def auth(self, ctx: triogate.Context) -> Any:
        return (yield)


class OldStyleWrapper(triogate.Plugin):
    @triogate.hookimpl(hookwrapper=True)
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        return None


class Both(triogate.Plugin):
    @triogate.hookimpl(tryfirst=True, trylast=True)
    async def auth(self, ctx: triogate.Context) -> None:
        return None


class Twice(triogate.Plugin):
    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        return None

    @triogate.hookimpl(specname="auth")
    async def also_auth(self, ctx: triogate.Context) -> None:
        return None


class SyncSpecname(triogate.Plugin):
    @triogate.hookimpl(specname="transform")
    def rewrite(self, ctx: triogate.Context) -> None:
        return None


class AsyncGenerator(triogate.Plugin):
    """What an async pluggy wrapper would look like without the option: refused too, by name."""

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> Any:
        yield


WRAPPER_ADVICE = ("which triogate does not support: hooks are awaited one after the other, and a pluggy wrapper is"
                  " a generator that cannot await. To run before or after other plugins use a priority (or"
                  " tryfirst=True / trylast=True); to act on the response, implement post_response")


async def test_refused_options_are_config_errors_naming_plugin_hook_and_option(
    upstream: UpstreamServer, gateway_factory,
) -> None:
    with pytest.raises(triogate.ConfigError) as info:
        await gateway_factory({
            "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
            "plugins": {"wrapper": {}},
            "routes": {"r": {"paths": ["/"], "upstream": "u", "plugins": {
                "old": {}, "both": {}, "twice": {}, "sync": {}, "agen": {}}}},
        }, plugins={"wrapper": Wrapper, "old": OldStyleWrapper, "both": Both, "twice": Twice,
                    "sync": SyncSpecname, "agen": AsyncGenerator})
    assert info.value.errors == [
        f"plugins.wrapper: plugin 'wrapper': hook auth is marked @hookimpl(wrapper=True), {WRAPPER_ADVICE}",
        (f"routes.r.plugins.old: plugin 'old': hook post_response is marked @hookimpl(hookwrapper=True),"
         f" {WRAPPER_ADVICE}"),
        "routes.r.plugins.both: plugin 'both': hook auth is marked both tryfirst=True and trylast=True; choose one",
        "routes.r.plugins.twice: plugin 'twice': hook auth is implemented twice (also_auth and auth); keep one",
        "routes.r.plugins.sync: hook transform must be an async function (async def rewrite(...))",
        ("routes.r.plugins.agen: hook transform must be an async function that returns, not an async generator"
         " (no yield in transform)"),
    ]


HOOK_MODULE = '''
import triogate

PRIORITY = 10

@triogate.hookimpl(hookwrapper=True)
def transform(ctx):
    yield
'''


def test_triogate_check_refuses_a_wrapper_in_a_hook_module(tmp_path: Path) -> None:
    (tmp_path / "wrap_hooks.py").write_text(HOOK_MODULE)
    (tmp_path / "gateway.toml").write_text(textwrap.dedent("""
        [gateway]
        hooks = ["./wrap_hooks.py"]
        [upstreams.u]
        targets = [{ url = "http://127.0.0.1:9" }]
        [routes.r]
        paths = ["/"]
        upstream = "u"
    """))
    done = subprocess.run([sys.executable, "-m", "triogate", "check"], cwd=tmp_path,
                          env={**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (2, "")  # EXIT_CONFIG
    assert done.stderr.splitlines() == [
        "triogate: invalid configuration (1 error):",
        (f"  {tmp_path / 'gateway.toml'}: gateway.hooks[0]: hook module './wrap_hooks.py': hook transform is"
         f" marked @hookimpl(hookwrapper=True), {WRAPPER_ADVICE}"),
    ]
