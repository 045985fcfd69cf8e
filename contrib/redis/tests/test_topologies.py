"""Sentinel and Cluster modes against real redis-server processes (sentinel mode, one-node cluster)."""

import subprocess

import trio
from triogate.testing import RedisServer, free_port, redis_command
from triogate_redis import LuaScript, RedisClient, RedisConfig

INCR = LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])", name="incr")


async def test_sentinel_mode(redis_server, nursery, tmp_path):
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor svc 127.0.0.1 {redis_server.port} 1\n")
    proc = await trio.lowlevel.open_process(["redis-server", str(conf), "--sentinel", "--dir", str(tmp_path)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with trio.fail_after(10):
            while True:
                try:
                    if await redis_command(port, "PING", timeout=1) == b"PONG":
                        break
                except OSError:
                    await trio.sleep(0.05)
        client = RedisClient(RedisConfig(sentinels=[f"127.0.0.1:{port}"], sentinel_service="svc",
                                         connect_timeout=1, timeout=1, health_check_interval=0.2))
        await client.start(nursery)
        assert await client.wait_state("up", 5), client.last_error
        assert await client.run_script(INCR, ["s"], [3]) == 3
        assert await redis_server.command("GET", "s") == b"$1"  # written to the monitored primary
        client.stop()
    finally:
        proc.kill()
        await proc.wait()


async def test_cluster_mode(nursery):
    # the cluster bus defaults to port + 10000, which may be taken or above 65535: pick it too
    node = RedisServer(args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                             "--cluster-port", str(free_port())])
    await node.start()
    try:
        assert await node.command("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"+OK"
        with trio.fail_after(10):  # the node reports CLUSTERDOWN until it has taken its slots
            while await node.command("SET", "{probe}", "1") != b"+OK":
                await trio.sleep(0.05)
        client = RedisClient(RedisConfig(cluster_nodes=[f"127.0.0.1:{node.port}"], connect_timeout=1, timeout=1,
                                         health_check_interval=0.2))
        await client.start(nursery)
        assert await client.wait_state("up", 10), client.last_error
        keys = ["{user:1}:a"]
        assert await client.run_script(INCR, keys, [2]) == 2
        assert await client.run_script(INCR, keys, [2]) == 4
        client.stop()
    finally:
        await node.aclose()
