"""With ``workers > 1`` the admin API shows the whole gateway, whichever worker answers: each worker
publishes its counters and upstream state once a second, the answering one merges them, and a
dead worker's numbers drop out. A real supervisor with two worker processes."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import trio
import triogate
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port

TOKEN = "s3cret-admin-token-0123"
HOOKS = textwrap.dedent("""
    import os
    import triogate

    @triogate.hookimpl
    async def post_response(ctx, response):
        response.headers.set("x-pid", str(os.getpid()))
""")


def env() -> dict[str, str]:
    return {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}


async def fresh(url: str, path: str, token: str | None = None) -> triogate.Fetched:
    """One request on a new connection, so the kernel may hand it to either worker."""
    client = GatewayClient(url)
    try:
        with trio.fail_after(5):
            return await client.get(path, headers={"authorization": f"Bearer {token}"} if token else None)
    finally:
        await client.aclose()


async def test_admin_api_merges_every_worker(tmp_path: Path, upstream: UpstreamServer) -> None:
    port, admin_port = free_port(), free_port()
    (tmp_path / "hooks.py").write_text(HOOKS)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(textwrap.dedent(f"""
        [gateway]
        listen = ["127.0.0.1:{port}"]
        workers = 2
        hooks = ["./hooks.py"]
        access_log = "off"
        [gateway.timeouts]
        drain = 2.0
        shutdown = 2.0
        [admin]
        listen = "127.0.0.1:{admin_port}"
        token = "{TOKEN}"
        [upstreams.u]
        targets = [{{ url = "{upstream.url}" }}]
        [routes.a]
        paths = ["/a"]
        upstream = "u"
    """))
    async with GatewayProcess(cfg, env=env()) as proc:
        served: dict[int, int] = {}  # pid -> requests it answered
        with trio.fail_after(10):
            while len(served) < 2 or sum(served.values()) < 20:
                r = await fresh(proc.url, "/a")
                assert r.status == 200
                pid = int(r.headers["x-pid"])
                served[pid] = served.get(pid, 0) + 1
        sent = sum(served.values())

        async def stats() -> dict:
            r = await fresh(proc.admin_url, "/stats", TOKEN)
            assert r.status == 200
            return r.json()

        def total(body: dict) -> int:
            (row,) = [x for x in body["routes"] if x["route"] == "a"]
            return row["requests"]

        # every worker publishes within a second; then any worker's answer holds every request
        answered_by: set[int] = set()
        with trio.fail_after(10):
            while True:
                body = await stats()
                if body["workers"]["reporting"] == [0, 1] and total(body) == sent:
                    break
                await trio.sleep(0.2)
            while len(answered_by) < 2:  # SO_REUSEPORT: fresh connections reach both workers
                body = await stats()
                answered_by.add(body["workers"]["answered_by"])
                assert body["workers"]["reporting"] == [0, 1]
                assert total(body) == sent
        assert body["workers"]["configured"] == 2
        (row,) = [x for x in body["routes"] if x["route"] == "a"]
        assert sum(row["histogram"]) == sent and row["p50_ms"] is not None and row["requests_per_s"] > 0

        r = await fresh(proc.admin_url, "/upstreams", TOKEN)
        ((target,),) = [up["targets"] for up in r.json()]
        assert target["healthy"] is True and target["circuit"] == "closed"
        assert [w["worker"] for w in target["workers"]] == [0, 1]
        assert target["open_connections"] == sum(w["open_connections"] for w in target["workers"])

        r = await fresh(proc.admin_url, "/status", TOKEN)
        status = r.json()
        assert [w["worker"] for w in status["per_worker"]] == [0, 1]
        assert {w["pid"] for w in status["per_worker"]} == set(served)

        # a dead worker's file is ignored at once; its replacement reports from zero
        victim = min(served)
        os.kill(victim, signal.SIGKILL)
        with trio.fail_after(10):
            while True:
                try:
                    pids = {w["pid"] for w in (await fresh(proc.admin_url, "/status", TOKEN)).json()["per_worker"]}
                    body = await stats()  # after: once the victim is gone from /status, its numbers are too
                except triogate.UpstreamError:  # a connection queued on the victim's admin socket is reset
                    continue
                if victim not in pids and body["workers"]["reporting"] == [0, 1]:
                    break
                assert total(body) in (sent, sent - served[victim])
                await trio.sleep(0.2)
        assert total(body) == sent - served[victim]
    assert not list(tmp_path.glob("*.stats.*.json"))  # the supervisor cleans up
