"""Three gateway processes (`python -m triogate run`) sharing one Redis: a limit of N lets exactly N through."""

import subprocess
import sys

import trio
from triogate import HTTPClient
from triogate.testing import free_port

LIMIT = 25
REQUESTS = 90


async def wait_listening(port: int, proc: trio.Process, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"gateway on {port} exited with {proc.returncode}")
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


async def test_three_gateway_processes_share_one_exact_limit(redis_server, upstream, tmp_path):
    ports = [free_port() for _ in range(3)]
    procs = []
    try:
        for i, port in enumerate(ports):
            config = tmp_path / f"gw{i}.toml"
            config.write_text(f"""
[gateway]
listen = ["127.0.0.1:{port}"]
access_log = "off"

[upstreams.users]
targets = [{{ url = "{upstream.url}" }}]

[routes.limited]
paths = ["/api/limited"]
upstream = "users"

[routes.limited.plugins.rate-limit]
limits = ["{LIMIT}/hour"]
key = "route"
backend = "redis"
fault_tolerant = false

[routes.limited.plugins.rate-limit.redis]
url = "{redis_server.url}"
timeout = 5.0
""")
            procs.append(await trio.lowlevel.open_process(
                [sys.executable, "-m", "triogate", "run", "-c", str(config), "--pid-file", str(tmp_path / f"{i}.pid")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port, proc in zip(ports, procs, strict=True):
            await wait_listening(port, proc)

        statuses: list[int] = []
        http = HTTPClient(read_timeout=20.0)

        async def one(i: int) -> None:
            fetched = await http.fetch("GET", f"http://127.0.0.1:{ports[i % 3]}/api/limited/x", timeout=20.0)
            statuses.append(fetched.status)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(REQUESTS):
                    nursery.start_soon(one, i)
        await http.aclose()
        assert len(statuses) == REQUESTS
        assert statuses.count(200) == LIMIT, statuses
        assert statuses.count(429) == REQUESTS - LIMIT
        # all three processes answered (round-robin, no 5xx) and counted in the same key
        assert await redis_server.command("EXISTS", "triogate:rl:{limited:route:r:limited}:3600") == b":1"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        with trio.move_on_after(10):
            for proc in procs:
                await proc.wait()
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
