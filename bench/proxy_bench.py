#!/usr/bin/env python3
"""Reverse-proxy benchmark: triogate against its peers, measured side by side in one run.

An nginx upstream serves a 210-byte JSON. Each proxy under test is pinned to CPU 0,
wrk and the upstream share CPU 1 (as in shared/design/measured.md). For each setup
it prints req/s and p50/p99 at c=50, p50 at c=1, CPU µs per request of the proxy
process, and each figure's ratio to triogate. Absolute numbers drift on shared
machines; the ratios are what to compare.

    make bench                      # everything, 3 interleaved rounds, medians (about 4 minutes)
    ("triogate, hook answers" is the same gateway answering from a local hook: the
    difference in CPU per request to "triogate" is the upstream client's share.)
    python bench/proxy_bench.py --duration 5 --only triogate,aiohttp

Needs: wrk and nginx (apt), aiohttp (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAYLOAD = ('{"id":"42","name":"Ada Lovelace","email":"ada@example.com","roles":["admin","dev"],'
           '"created":"2026-11-01T10:00:00Z","active":true,"team":"analytical-engines","score":98.5,'
           '"note":"benchmark payload of 210 b"}')
UPSTREAM_PORT, NGINX_PORT, AIOHTTP_PORT, TRIOGATE_PORT = 18080, 18081, 18082, 18083
PROXY_CPU, LOAD_CPU = "0", "1"


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_conf(workdir: Path, upstream_only: bool) -> Path:
    body = PAYLOAD.replace('"', '\\"')
    servers = f"""
    server {{
        listen 127.0.0.1:{UPSTREAM_PORT};
        keepalive_requests 1000000;
        location / {{ default_type application/json; return 200 "{body}"; }}
    }}"""
    if not upstream_only:
        servers = f"""
    upstream backend {{ server 127.0.0.1:{UPSTREAM_PORT}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{NGINX_PORT};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""
    conf = workdir / ("upstream.conf" if upstream_only else "proxy.conf")
    conf.write_text(textwrap.dedent(f"""
    worker_processes 1;
    daemon off;
    pid {workdir}/{conf.stem}.pid;
    error_log {workdir}/{conf.stem}.err warn;
    events {{ worker_connections 4096; }}
    http {{
        access_log off;
        client_body_temp_path {workdir}/tmp;
        proxy_temp_path {workdir}/tmp;
        fastcgi_temp_path {workdir}/tmp;
        uwsgi_temp_path {workdir}/tmp;
        scgi_temp_path {workdir}/tmp;
        {servers}
    }}
    """))
    (workdir / "tmp").mkdir(exist_ok=True)
    return conf


AIOHTTP_PROXY = f"""
import aiohttp
from aiohttp import web

UPSTREAM = "http://127.0.0.1:{UPSTREAM_PORT}"
HOP = {{"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host",
        "content-length"}}

async def handler(request):
    session = request.app["session"]
    headers = {{k: v for k, v in request.headers.items() if k.lower() not in HOP}}
    data = await request.read()
    async with session.request(request.method, UPSTREAM + request.path_qs, headers=headers, data=data or None) as r:
        body = await r.read()
        out = {{k: v for k, v in r.headers.items() if k.lower() not in HOP}}
        return web.Response(status=r.status, headers=out, body=body)

async def on_startup(app):
    app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=60))

async def on_cleanup(app):
    await app["session"].close()

app = web.Application()
app.router.add_route("*", "/{{tail:.*}}", handler)
app.on_startup.append(on_startup)
app.on_cleanup.append(on_cleanup)
web.run_app(app, host="127.0.0.1", port={AIOHTTP_PORT}, access_log=None, print=None)
"""

HOOK_MODULE = f"""
import triogate

PAYLOAD = {PAYLOAD.encode()!r}


@triogate.hookimpl
async def transform(ctx):
    if ctx.request.path.startswith("/local"):
        return triogate.Response(200, [("content-type", "application/json")], PAYLOAD)
"""

TRIOGATE_TOML = f"""
[gateway]
listen = ["127.0.0.1:{TRIOGATE_PORT}"]
access_log = "off"
log_level = "warning"
hooks = ["./local_hook.py"]

[upstreams.bench]
targets = [{{ url = "http://127.0.0.1:{UPSTREAM_PORT}" }}]

[routes.bench]
paths = ["/"]
upstream = "bench"
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, conns: int, duration: int, path: str = "/users/42") -> dict[str, float]:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
           f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "requests": total,
            "errors": int(errors.group(1)) if errors else 0}


def measure(name: str, port: int, pid: int | None, duration: int, path: str = "/users/42") -> dict[str, float]:
    run_wrk(port, 50, 2, path)  # warm up pools and caches
    before = cpu_seconds(pid) if pid else 0.0
    hot = run_wrk(port, 50, duration, path)
    cpu = (cpu_seconds(pid) - before) if pid else 0.0
    one = run_wrk(port, 1, max(3, duration // 2), path)
    return {"name": name, **hot, "p50_c1": one["p50"],
            "cpu_us": (cpu / hot["requests"] * 1e6) if pid and hot["requests"] else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=6, help="seconds per wrk run at c=50")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measure every setup this many times, interleaved; the median is reported")
    ap.add_argument("--only", default="direct,nginx,aiohttp,triogate", help="comma-separated setups")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} not found (apt-get install wrk nginx-light util-linux)", file=sys.stderr)
            return 1
    wanted = args.only.split(",")
    procs: list[subprocess.Popen[bytes]] = []
    setups: list[tuple[str, int, int | None, str]] = []  # name, port, pid to charge CPU to, path
    rounds: list[list[dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            procs.append(subprocess.Popen(["taskset", "-c", LOAD_CPU, "nginx", "-c", str(nginx_conf(work, True))]))
            wait_port(UPSTREAM_PORT)
            if "direct" in wanted:
                setups.append(("direct to upstream", UPSTREAM_PORT, None, "/users/42"))
            if "nginx" in wanted:
                p = subprocess.Popen(["taskset", "-c", PROXY_CPU, "nginx", "-c", str(nginx_conf(work, False))])
                procs.append(p)
                wait_port(NGINX_PORT)
                time.sleep(0.3)
                worker = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
                setups.append(("nginx proxy (keepalive)", NGINX_PORT, int(worker[0]) if worker else None, "/users/42"))
            if "aiohttp" in wanted:
                script = work / "aiohttp_proxy.py"
                script.write_text(AIOHTTP_PROXY)
                p = subprocess.Popen(["taskset", "-c", PROXY_CPU, sys.executable, str(script)])
                procs.append(p)
                wait_port(AIOHTTP_PORT)
                setups.append(("aiohttp proxy", AIOHTTP_PORT, p.pid, "/users/42"))
            if "triogate" in wanted:
                cfg = work / "gateway.toml"
                cfg.write_text(TRIOGATE_TOML)
                (work / "local_hook.py").write_text(HOOK_MODULE)
                env = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}
                p = subprocess.Popen(["taskset", "-c", PROXY_CPU, sys.executable, "-m", "triogate", "run", "-c",
                                      str(cfg)], env=env)
                procs.append(p)
                wait_port(TRIOGATE_PORT)
                setups.append(("triogate", TRIOGATE_PORT, p.pid, "/users/42"))
                # the same process answering from a hook: listener + pipeline without the upstream client
                setups.append(("triogate, hook answers", TRIOGATE_PORT, p.pid, "/local"))
            for i in range(args.rounds):
                print(f"round {i + 1} of {args.rounds}", file=sys.stderr)
                rounds.append([measure(name, port, pid, args.duration, path) for name, port, pid, path in setups])
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM if "triogate" not in str(p.args) else signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    results = [
        {"name": r0["name"], **{k: statistics.median(rnd[j][k] for rnd in rounds)
                                for k in r0 if k != "name"}}
        for j, r0 in enumerate(rounds[0])
    ] if rounds else []
    if len(rounds) > 1:
        by = {r["name"]: [rnd[j]["rps"] for rnd in rounds] for j, r in enumerate(rounds[0])}
        print("req/s per round: " + "; ".join(f"{k}: {', '.join(f'{v:.0f}' for v in vs)}" for k, vs in by.items()))
    base = next((r for r in results if r["name"] == "triogate"), None)
    print()
    print(f"{'setup':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p50 c=1':>8} {'CPU µs/req':>11} "
          f"{'req/s ÷ triogate':>17} {'errors':>7}")
    for r in results:
        ratio = r["rps"] / base["rps"] if base else float("nan")
        print(f"{r['name']:<26} {r['rps']:>9.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} {r['p50_c1']:>8.3f} "
              f"{r['cpu_us']:>11.1f} {ratio:>17.2f} {r['errors']:>7}")
    direct = next((r for r in results if r["name"] == "direct to upstream"), None)
    if base and direct:
        print(f"\ntriogate added p50 latency at c=1: {base['p50_c1'] - direct['p50_c1']:.3f} ms (target ≤ 0.3 ms)")
    local = next((r for r in results if r["name"] == "triogate, hook answers"), None)
    if base and local:
        print(f"triogate CPU per request: listener + pipeline {local['cpu_us']:.0f} µs, "
              f"upstream client and proxying {base['cpu_us'] - local['cpu_us']:.0f} µs")
    aio = next((r for r in results if r["name"] == "aiohttp proxy"), None)
    if base and aio:
        print(f"triogate ÷ aiohttp throughput: {base['rps'] / aio['rps']:.2f} (target ≥ 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
