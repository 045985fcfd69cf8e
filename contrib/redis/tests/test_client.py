"""RedisClient against a real redis-server: calls, scripts, outages, reconnects, timeouts."""

from typing import ClassVar

import pytest
import trio
from coredis.exceptions import ResponseError
from triogate.testing import RedisServer, free_port
from triogate_redis import LuaScript, RedisClient, RedisConfig, RedisUnavailable, load_script, shared_client

FAST = {"connect_timeout": 0.5, "timeout": 0.5, "health_check_interval": 0.1}


async def _get(c, key):
    return await c.get(key)


async def test_call_and_script(redis_server, nursery):
    client = RedisClient(RedisConfig(url=redis_server.url, **FAST))
    await client.start(nursery)
    assert client.healthy and client.stats["connects"] == 1
    await client.call(lambda c: c.set(client.key("a"), "1"))
    assert await client.call(_get, "triogate:a") == b"1"
    incr = LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])", name="incr")
    assert await client.run_script(incr, ["triogate:n"], [5]) == 5
    # the server forgot the script: EVALSHA fails with NOSCRIPT and the client falls back to EVAL
    assert await redis_server.command("SCRIPT", "FLUSH") == b"+OK"
    assert await client.run_script(incr, ["triogate:n"], [2]) == 7
    client.stop()


async def test_script_errors_are_bugs_not_outages(redis_server, nursery):
    client = RedisClient(RedisConfig(url=redis_server.url, **FAST))
    await client.start(nursery)
    with pytest.raises(ResponseError):
        await client.run_script(LuaScript("return redis.call('NOPE')"), [], [])
    assert client.healthy
    client.stop()


async def test_down_at_startup_then_comes_up(nursery):
    server = RedisServer()
    client = RedisClient(RedisConfig(url=server.url, **FAST))
    with trio.fail_after(2):
        await client.start(nursery)  # returns after the first failed attempt, never hangs
    assert client.state == "down" and "Error" in (client.last_error or "")
    with trio.fail_after(0.05):  # refused at once while down
        with pytest.raises(RedisUnavailable):
            await client.call(_get, "x")
    assert client.stats["unavailable"] == 1
    try:
        await server.start()
        assert await client.wait_state("up", 5)
        assert await client.call(_get, "x") is None
    finally:
        client.stop()
        await server.aclose()


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_outage_and_recovery(redis_server, nursery, how):
    client = RedisClient(RedisConfig(url=redis_server.url, **FAST))
    await client.start(nursery)
    await client.call(lambda c: c.set("k", "v"))
    await getattr(redis_server, how)()
    with trio.fail_after(2):
        with pytest.raises(RedisUnavailable):
            await client.call(_get, "k")
        with pytest.raises(RedisUnavailable):
            await client.call(_get, "k")
    assert not client.healthy
    await redis_server.start()
    assert await client.wait_state("up", 5)
    assert await client.call(_get, "k") is None  # a fresh server without persistence
    assert client.stats["connects"] >= 2
    client.stop()


async def test_unresponsive_server_never_blocks(nursery):
    """A server that accepts connections and never answers: bounded by the timeouts, then down."""
    port = free_port()
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    held = []

    async def hold(stream):
        held.append(stream)
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    client = RedisClient(RedisConfig(url=f"redis://127.0.0.1:{port}", connect_timeout=0.2, timeout=0.2,
                                     health_check_interval=0.2))
    with trio.fail_after(2):
        await client.start(nursery)
    assert client.state == "down"
    with trio.fail_after(0.05):
        with pytest.raises(RedisUnavailable):
            await client.call(_get, "k")
    client.stop()
    for listener in listeners:
        await listener.aclose()


SPIN = LuaScript("""
local s = redis.call('TIME')
while true do
  local n = redis.call('TIME')
  if (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > tonumber(ARGV[1]) then return 1 end
end
""", name="spin")


async def test_slow_command_counts_as_unavailable(redis_server, nursery):
    client = RedisClient(RedisConfig(url=redis_server.url, connect_timeout=0.5, timeout=0.2, health_check_interval=0.1))
    await client.start(nursery)
    with trio.fail_after(1):
        with pytest.raises(RedisUnavailable):
            await client.run_script(SPIN, [], [600_000])  # the server is busy for 0.6 s
    assert not client.healthy
    assert await client.wait_state("up", 5)  # the monitor's PING succeeds once the script ends
    assert await client.run_script(SPIN, [], [1000]) == 1
    client.stop()


async def test_shared_client_per_loaded_config(redis_server, gateway_factory, upstream):
    import triogate

    class User(triogate.Plugin):
        clients: ClassVar[list[RedisClient]] = []

        @triogate.hookimpl
        async def startup(self, gateway):
            url = redis_server.url if self.route != "other" else redis_server.url.replace("/0", "/1")
            User.clients.append(await shared_client(gateway, RedisConfig(url=url, **FAST)))

    cfg = {"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
           "routes": {r: {"paths": [f"/{r}"], "upstream": "u", "plugins": {"user": {}}} for r in ("a", "b", "other")}}
    gw = await gateway_factory(cfg, plugins={"user": User})
    a, b, other = User.clients
    assert a is b and other is not a  # one per config, per loaded gateway config
    assert a.healthy and other.healthy  # started by the core
    assert await gw.reload(cfg) == []
    a2, _, _ = User.clients[3:]
    assert a2 is not a and a2.healthy
    with trio.fail_after(5):  # the retired config's pool is closed once it drained
        while a.state != "down" or other.state != "down":
            await trio.sleep(0.01)
    assert a.last_error == "stopped" and a2.healthy
    with pytest.raises(RedisUnavailable):
        await a.call(_get, "k")


async def test_running_client_outside_a_gateway(redis_server):
    from triogate_redis import running_client

    async with running_client(RedisConfig(url=redis_server.url, **FAST), name="tool") as client:
        assert client.healthy and client.name == "tool"
    assert client.state == "down"


def test_load_script_from_package(tmp_path, monkeypatch):
    pkg = tmp_path / "scriptpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "one.lua").write_text("return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    script = load_script("scriptpkg", "one.lua")
    assert script.source == "return 1\n" and len(script.sha) == 40 and script.name == "one.lua"


async def test_a_call_whose_session_ended_under_it_is_unavailable(redis_server, nursery):
    """The session can end while a call is under way (a failed health check, a moved Sentinel primary:
    the client reconnects); coredis then fails the call with RuntimeError "pool ... has exited".
    That is an outage like the others (RedisUnavailable), not a bug in the plugin."""
    client = RedisClient(RedisConfig(url=redis_server.url, **FAST))
    await client.start(nursery)

    async def slow_get(c):
        await trio.sleep(0.2)  # the session ends meanwhile
        return await c.get("k")

    async def stop_soon():
        await trio.sleep(0.05)
        client.stop()

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(stop_soon)
            with pytest.raises(RedisUnavailable, match="reconnecting: RuntimeError"):
                await client.call(slow_get)
