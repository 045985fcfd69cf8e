"""Reload: validate fully, swap atomically, in-flight requests finish on the old config,
an invalid config keeps the old one serving (Gateway.reload, SIGHUP, `triogate reload`)."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import attrs
import trio
import triogate
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port


class Tag(triogate.Plugin):
    """Marks responses with the config they ran on; records its lifecycle."""

    priority = 10
    events: ClassVar[list[str]] = []

    @attrs.define(frozen=True)
    class Config:
        value: str = triogate.setting(description="tag")
        fail_startup: bool = triogate.setting(False, description="raise in startup")

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices) -> None:
        if self.config.fail_startup:
            raise RuntimeError("cannot connect to the backing store")
        Tag.events.append(f"startup {self.config.value}")

    @triogate.hookimpl
    async def shutdown(self, gateway: triogate.GatewayServices) -> None:
        Tag.events.append(f"shutdown {self.config.value}")

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        response.headers.set("x-config", self.config.value)


def config(upstream: UpstreamServer, tag: str, **extra: object) -> dict:
    return {
        "gateway": {"timeouts": {"drain": 10.0}},
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
        "plugins": {"tag": {"value": tag, **extra}},
    }


async def test_reload_swaps_and_invalid_config_keeps_the_old_one(upstream: UpstreamServer, gateway_factory) -> None:
    Tag.events = []
    gw = await gateway_factory(config(upstream, "v1"), plugins={"tag": Tag})
    assert (await gw.client.get("/x")).headers["x-config"] == "v1"
    assert await gw.reload(config(upstream, "v2")) == []
    assert (await gw.client.get("/x")).headers["x-config"] == "v2"
    # an invalid config: rejected with its errors, nothing changes
    bad = config(upstream, "v3")
    bad["routes"]["r"]["upstream"] = "missing"
    errors = await gw.reload(bad)
    assert errors == ["<test>: routes.r.upstream: unknown upstream 'missing' (known: u)"]
    # a plugin config error, found when the new plugins are built
    bad = config(upstream, "v3")
    bad["plugins"]["tag"]["colour"] = "red"
    assert await gw.reload(bad) == ["<test>: plugins.tag.colour: unknown key (expected one of value, fail_startup)"]
    # a startup hook that fails rejects the reload too
    assert await gw.reload(config(upstream, "v4", fail_startup=True)) == [
        "plugin tag failed at startup: RuntimeError: cannot connect to the backing store"]
    assert (await gw.client.get("/x")).headers["x-config"] == "v2"
    assert gw.gateway.reloads == {"ok": 1, "failed": 2}  # the first one never reached the gateway
    assert gw.gateway.version == 2
    with trio.fail_after(5):
        while "shutdown v1" not in Tag.events:
            await trio.sleep(0.01)
    assert Tag.events == ["startup v1", "startup v2", "shutdown v1"]


async def test_in_flight_request_finishes_on_the_old_config(upstream_factory, gateway_factory) -> None:
    Tag.events = []
    release = trio.Event()

    async def slow(req: triogate.Request) -> dict:
        if req.path == "/slow":
            await release.wait()
        return {"served_by": "old"}

    old_up = await upstream_factory(slow)
    new_up = await upstream_factory(lambda req: _json({"served_by": "new"}))
    gw = await gateway_factory(config(old_up, "old"), plugins={"tag": Tag})
    results: dict[str, triogate.Fetched] = {}

    async def slow_request() -> None:
        client = GatewayClient(gw.url)
        try:
            results["slow"] = await client.get("/slow")
        finally:
            await client.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_request)
        with trio.fail_after(5):
            while not old_up.requests:
                await trio.sleep(0.005)
        assert await gw.reload(config(new_up, "new")) == []
        # new requests use the new config at once, while the slow one is still running
        r = await gw.client.get("/fast")
        assert (r.headers["x-config"], r.json()["served_by"]) == ("new", "new")
        assert "shutdown old" not in Tag.events  # the old config waits for its request
        release.set()
    slow_resp = results["slow"]
    assert slow_resp.status == 200
    assert (slow_resp.headers["x-config"], slow_resp.json()["served_by"]) == ("old", "old")
    with trio.fail_after(5):
        while "shutdown old" not in Tag.events:
            await trio.sleep(0.01)
    assert Tag.events == ["startup old", "startup new", "shutdown old"]


async def _json(obj: dict) -> dict:
    return obj


async def test_reload_under_load_has_zero_failed_requests(upstream_factory, gateway_factory) -> None:
    ups = [await upstream_factory(lambda req, i=i: _json({"up": i})) for i in range(3)]
    gw = await gateway_factory(config(ups[0], "v0"), plugins={"tag": Tag})
    stop = trio.Event()
    ok = 0
    failures: list[str] = []
    seen: set[str] = set()

    async def client_loop(keep_alive: bool) -> None:
        nonlocal ok
        client = GatewayClient(gw.url)
        try:
            while not stop.is_set():
                if not keep_alive:
                    await client.aclose()
                    client = GatewayClient(gw.url)
                try:
                    with trio.fail_after(5):
                        r = await client.post("/item", body=b"x" * 1000)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if r.status != 200:
                    failures.append(f"status {r.status}: {r.content[:200]!r}")
                else:
                    ok += 1
                    seen.add(r.headers["x-config"])
        finally:
            await client.aclose()

    async with trio.open_nursery() as nursery:
        for i in range(16):
            nursery.start_soon(client_loop, i % 2 == 0)
        for n in range(1, 7):
            await trio.sleep(0.15)
            assert await gw.reload(config(ups[n % 3], f"v{n}")) == []
        await trio.sleep(0.15)
        stop.set()
    assert failures == []
    assert ok > 100
    assert seen == {f"v{n}" for n in range(7)}
    assert gw.gateway.reloads == {"ok": 6, "failed": 0}


# --------------------------------------------------------------------------- SIGHUP and `triogate reload`

HOOKS = textwrap.dedent("""
    import os
    import triogate

    @triogate.hookimpl
    async def post_response(ctx, response):
        response.headers.set("x-pid", str(os.getpid()))
        response.headers.set("x-version", str(ctx.gateway.version))
""")


def write_config(path: Path, port: int, upstream: UpstreamServer, routes: str) -> None:
    path.write_text(textwrap.dedent(f"""
        [gateway]
        listen = ["127.0.0.1:{port}"]
        hooks = ["./hooks.py"]
        access_log = "off"
        [gateway.timeouts]
        drain = 5.0
        [upstreams.u]
        targets = [{{ url = "{upstream.url}" }}]
    """) + textwrap.dedent(routes))


def cli_env() -> dict[str, str]:
    return {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}


async def get(client: GatewayClient, path: str) -> triogate.Fetched:
    with trio.fail_after(5):
        return await client.get(path)


async def test_sighup_and_triogate_reload(tmp_path: Path, upstream: UpstreamServer) -> None:
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    (tmp_path / "hooks.py").write_text(HOOKS)
    write_config(cfg, port, upstream, '[routes.a]\npaths = ["/a"]\nupstream = "u"\n')
    client = GatewayClient(f"http://127.0.0.1:{port}")
    try:
        async with GatewayProcess(cfg, env=cli_env()) as proc:  # returns once the pid file is written
            pid_file = tmp_path / ".gateway.toml.pid"
            assert int(pid_file.read_text()) == proc.pid
            assert (await get(client, "/a")).headers["x-version"] == "1"
            assert (await get(client, "/b")).status == 404

            # `triogate reload`: validates, then SIGHUPs the pid in the pid file
            write_config(cfg, port, upstream, '[routes.a]\npaths = ["/a"]\nupstream = "u"\n'
                                              '[routes.b]\npaths = ["/b"]\nupstream = "u"\n')
            done = await trio.run_process([sys.executable, "-m", "triogate", "reload", "-c", str(cfg)],
                                          capture_stdout=True, capture_stderr=True, env=cli_env(), check=False)
            assert done.returncode == 0, done.stderr
            with trio.fail_after(5):
                while (await get(client, "/b")).status != 200:
                    await trio.sleep(0.02)
            assert (await get(client, "/a")).headers["x-version"] == "2"

            # an invalid file: `triogate reload` refuses before signalling
            cfg.write_text(cfg.read_text() + '\n[routes.c]\npaths = ["/c"]\nupstream = "nope"\n')
            done = await trio.run_process([sys.executable, "-m", "triogate", "reload", "-c", str(cfg)],
                                          capture_stdout=True, capture_stderr=True, env=cli_env(), check=False)
            assert done.returncode == 2
            err = done.stderr.decode()
            assert "routes.c.upstream: unknown upstream 'nope' (known: u)" in err
            assert "not reloading; the running config keeps serving" in err
            # a bare SIGHUP with the invalid file: logged, the old config keeps serving
            os.kill(proc.pid, signal.SIGHUP)
            with trio.fail_after(5):
                while "reload rejected" not in proc.output():
                    await trio.sleep(0.02)
            r = await get(client, "/b")
            assert (r.status, r.headers["x-version"]) == (200, "2")
            assert (await get(client, "/c")).status == 404
            assert "Traceback" not in proc.output()

            proc.send_signal(signal.SIGTERM)
            await proc.wait(10)
            assert proc.returncode == 0
            assert not pid_file.exists()
    finally:
        await client.aclose()


async def test_refused_sighup_is_logged_once_one_line_per_error(tmp_path: Path, upstream: UpstreamServer) -> None:
    """Line-based log shipping: each error of a refused reload is one record on one line, logged once."""
    import re

    port = free_port()
    cfg = tmp_path / "gateway.toml"
    (tmp_path / "hooks.py").write_text(HOOKS)
    write_config(cfg, port, upstream, '[routes.a]\npaths = ["/a"]\nupstream = "u"\n')
    async with GatewayProcess(cfg, env=cli_env()) as proc:
        write_config(cfg, port, upstream, '[routes.a]\npaths = ["a"]\nupstream = "nope"\n')
        os.kill(proc.pid, signal.SIGHUP)
        with trio.fail_after(10):
            while proc.output().count("reload rejected") < 2:
                await trio.sleep(0.02)
        # a valid reload afterwards: once it is logged, everything about the refused one is too
        write_config(cfg, port, upstream, '[routes.a]\npaths = ["/a"]\nupstream = "u"\n')
        os.kill(proc.pid, signal.SIGHUP)
        with trio.fail_after(10):
            while "config reloaded" not in proc.output():
                await trio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        await proc.wait(10)
    lines = proc.output().splitlines()
    rejected = [line for line in lines if "reload rejected" in line]
    assert len(rejected) == 2, proc.output()
    errors = {"gateway.toml: routes.a.upstream: unknown upstream 'nope' (known: u)",
              "gateway.toml: routes.a.paths[0]: expected a path starting with /, got 'a'"}
    assert "keeps serving (1/2): " in rejected[0] and "keeps serving (2/2): " in rejected[1]
    assert {next(e for e in errors if line.endswith(e)) for line in rejected} == errors
    assert sum("unknown upstream 'nope'" in line for line in lines) == 1
    assert sum("expected a path starting with /" in line for line in lines) == 1
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
    assert [line for line in lines if line.strip() and not stamp.match(line)] == []  # no continuation lines


async def test_reload_refused_by_a_failing_startup_hook_is_one_line(tmp_path: Path, upstream: UpstreamServer) -> None:
    """The issue's own example of a refused reload, a hook whose startup fails: one record on one
    line naming the hook and the error, no traceback block (that stays for the first start)."""
    import re

    port = free_port()
    cfg = tmp_path / "gateway.toml"
    (tmp_path / "hooks.py").write_text(HOOKS)
    write_config(cfg, port, upstream, '[routes.a]\npaths = ["/a"]\nupstream = "u"\n')
    async with GatewayProcess(cfg, env=cli_env()) as proc:
        (tmp_path / "hooks.py").write_text(HOOKS + "\n@triogate.hookimpl\nasync def startup(gateway):\n"
                                           "    raise RuntimeError('store unreachable')\n")
        os.kill(proc.pid, signal.SIGHUP)
        with trio.fail_after(10):
            while "reload rejected" not in proc.output():
                await trio.sleep(0.02)
        (tmp_path / "hooks.py").write_text(HOOKS)
        os.kill(proc.pid, signal.SIGHUP)
        with trio.fail_after(10):
            while "config reloaded" not in proc.output():
                await trio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        await proc.wait(10)
    lines = proc.output().splitlines()
    assert [line for line in lines if "store unreachable" in line] == [next(
        line for line in lines if "reload rejected" in line)], proc.output()
    assert "failed at startup: RuntimeError: store unreachable" in proc.output()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
    assert [line for line in lines if line.strip() and not stamp.match(line)] == []  # no traceback lines


async def test_stop_signals_after_the_drain_do_not_kill_a_clean_exit(tmp_path: Path, upstream: UpstreamServer) -> None:
    """SIGTERM to the process group plus one forwarded by a parent (the demo runner, make): the
    duplicates arriving while or after the gateway drains must not turn exit 0 into "killed by SIGTERM"."""
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    (tmp_path / "hooks.py").write_text(HOOKS)
    write_config(cfg, port, upstream, '[routes.a]\npaths = ["/a"]\nupstream = "u"\n')
    async with GatewayProcess(cfg, env=cli_env()) as proc:
        with trio.fail_after(15):
            while proc.returncode is None:  # keep signalling until it is gone, as a impatient parent would
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    break
                await trio.sleep(0.001)
            code = await proc.wait(10)
    assert code == 0, proc.output()
    assert "Traceback" not in proc.output()


async def test_reload_applies_new_limits_to_new_connections(upstream, gateway_factory):
    """Limits are read per connection: after a reload, a new connection gets the new ones."""
    from triogate.testing import raw_request

    def cfg(limit: int) -> dict:
        return {"gateway": {"limits": {"max_body_bytes": limit}},
                "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
                "routes": {"r": {"paths": ["/"], "upstream": "u"}}}

    gw = await gateway_factory(cfg(1000))
    request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\nconnection: close\r\n\r\n" + b"a" * 50
    assert (await raw_request(gw.port, request)).startswith(b"HTTP/1.1 200")
    assert await gw.reload(cfg(10)) == []
    assert (await raw_request(gw.port, request)).startswith(b"HTTP/1.1 413")
