"""Three gateway processes (`python -m triogate run`) sharing one Redis: a limit of N lets exactly N through."""

from contextlib import AsyncExitStack

import trio
from triogate import HTTPClient
from triogate.testing import GatewayProcess, free_port

LIMIT = 25
REQUESTS = 90


async def test_three_gateway_processes_share_one_exact_limit(redis_server, upstream, tmp_path):
    ports = [free_port() for _ in range(3)]
    async with AsyncExitStack() as stack:
        procs = []
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
            proc = GatewayProcess(config, args=["--pid-file", tmp_path / f"{i}.pid"])
            stack.push_async_callback(proc.aclose)
            procs.append(proc)
        async with trio.open_nursery() as nursery:  # start all three at once
            for proc in procs:
                nursery.start_soon(proc.start)

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
