"""With workers = 2, a scrape of either worker reports the requests of both (prometheus-client
multi-process mode, PROMETHEUS_MULTIPROC_DIR), and POST /reload reaches every worker."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import trio
from prometheus_client.multiprocess import MultiProcessCollector
from triogate import HTTPClient
from triogate.testing import GatewayProcess, free_port

TOKEN = "workers-admin-token-0123"
N = 40


def per_worker_requests(mdir: Path) -> dict[int, float]:
    out = {}
    for f in glob.glob(str(mdir / "counter_*.db")):
        pid = int(Path(f).stem.split("_")[1])
        total = 0.0
        for metric in MultiProcessCollector.merge([f], accumulate=True):
            if metric.name == "triogate_requests":
                total += sum(s.value for s in metric.samples if s.name == "triogate_requests_total")
        out[pid] = total
    return out


async def test_two_workers_aggregate(upstream, tmp_path: Path):
    port, admin_port = free_port(), free_port()
    mdir = tmp_path / "metrics"
    mdir.mkdir()
    cfg = tmp_path / "gateway.toml"
    text = f"""
[gateway]
listen = ["127.0.0.1:{port}"]
workers = 2
access_log = "off"
log_level = "warning"

[admin]
listen = "127.0.0.1:{admin_port}"
token = "{TOKEN}"

[plugins.prometheus]

[upstreams.users]
targets = [{{ url = "{upstream.url}" }}]

[routes.users]
paths = ["/api/users"]
upstream = "users"
"""
    cfg.write_text(text)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mdir)}
    env.pop("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD", None)
    admin = f"http://127.0.0.1:{admin_port}"
    auth = [("authorization", f"Bearer {TOKEN}")]
    client = HTTPClient(read_timeout=10.0)
    try:
        async with GatewayProcess(cfg, env=env):  # returns once every worker serves
            r = await client.fetch("GET", f"http://127.0.0.1:{port}/api/users", timeout=10.0)  # request 1 of N
            assert r.status == 200
            # many requests on fresh connections, concurrently: the kernel spreads them over both workers
            statuses: list[int] = []

            async def one() -> None:
                c = HTTPClient(read_timeout=10.0)
                try:
                    statuses.append((await c.fetch("GET", f"http://127.0.0.1:{port}/api/users", timeout=10.0)).status)
                finally:
                    await c.aclose()

            async with trio.open_nursery() as n:
                for _ in range(N - 1):
                    n.start_soon(one)
            assert statuses == [200] * (N - 1)

            pids = set()
            with trio.fail_after(20):
                while len(pids) < 2:  # scrape until both workers have answered one scrape
                    c = HTTPClient(read_timeout=10.0)
                    try:
                        status = (await c.fetch("GET", admin + "/status", headers=auth, timeout=5.0)).json()
                        body = (await c.fetch("GET", admin + "/metrics", headers=auth, timeout=5.0)).content.decode()
                    finally:
                        await c.aclose()
                    pids.add(status["pid"])
                    assert status["workers"] == 2 and status["supervised"] is True
                    total = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                                if line.startswith("triogate_requests_total{"))
                    assert total == N, body  # whichever worker answers, it reports all of them

            by_worker = per_worker_requests(mdir)
            assert set(by_worker) == pids, (by_worker, pids)
            assert sum(by_worker.values()) == N
            assert all(v > 0 for v in by_worker.values()), by_worker  # both served traffic

            # POST /reload: validated by the worker that gets it, then every worker reloads; the answer
            # waits for the supervisor to gather every worker's outcome
            cfg.write_text(text.replace('paths = ["/api/users"]', 'paths = ["/v2/users"]'))
            r = await client.fetch("POST", admin + "/reload", headers=auth, timeout=30.0)
            assert r.status == 200 and r.json()["status"] == "reloaded", r.body
            assert {w["pid"]: w["config_version"] for w in r.json()["workers"]} == dict.fromkeys(pids, 2)
            versions: dict[int, int] = {}
            with trio.fail_after(20):
                while len(versions) < 2 or set(versions.values()) != {2}:
                    c = HTTPClient(read_timeout=10.0)
                    try:
                        s = (await c.fetch("GET", admin + "/status", headers=auth, timeout=5.0)).json()
                    finally:
                        await c.aclose()
                    versions[s["pid"]] = s["config_version"]
                    await trio.sleep(0.05)
            assert set(versions) == pids

            # a bad file is refused by the API with its errors; nothing is signalled
            cfg.write_text(text.replace('upstream = "users"\n', 'upstream = "nope"\n'))
            r = await client.fetch("POST", admin + "/reload", headers=auth, timeout=10.0)
            assert r.status == 422
            assert any("routes.users.upstream" in e for e in r.json()["errors"])
    finally:
        await client.aclose()
