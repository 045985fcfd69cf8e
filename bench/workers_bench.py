#!/usr/bin/env python3
"""Workers: does load spread evenly, and does the CPU cost per request stay flat from 1 to N workers?

A two-core machine shared with the load generator cannot show throughput scaling, so this
measures what it can: with ``workers = 1`` and ``workers = 2`` (same config, access log on, bare
route to an nginx upstream), the CPU µs per request summed over the workers, and each worker's
share of that CPU (an even spread is 1/N each). Rounds alternate the two setups; medians printed.

    python bench/workers_bench.py                 # 3 rounds of 5 s per setup
    python bench/workers_bench.py --workers 1,2,4 --rounds 5

Needs wrk and nginx (apt-get install wrk nginx) and ``make install``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench as pb  # the sibling script: nginx config, wrk parsing, CPU readings

GATEWAY_PORT = 18090


def gateway_toml(workers: int, log: Path) -> str:
    return textwrap.dedent(f"""\
        [gateway]
        listen = ["127.0.0.1:{GATEWAY_PORT}"]
        workers = {workers}
        access_log = "{log}"
        log_level = "warning"

        [upstreams.bench]
        targets = [{{ url = "http://127.0.0.1:{pb.UPSTREAM_PORT}" }}]

        [routes.bare]
        paths = ["/"]
        upstream = "bench"
        """)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def measure(workdir: Path, lua: Path, workers: int, duration: int) -> dict[str, float]:
    cfg = workdir / f"w{workers}.toml"
    cfg.write_text(gateway_toml(workers, workdir / f"access-{workers}.log"))
    env = {k: v for k, v in os.environ.items() if k != "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"}
    sup = subprocess.Popen([sys.executable, "-m", "triogate", "run", "-c", str(cfg)], env=env, cwd=workdir)
    try:
        pb.wait_port(GATEWAY_PORT)
        setup = pb.Setup("w", "w", "log")
        pb.run_wrk(lua, GATEWAY_PORT, 50, 1, setup)  # warm-up
        procs = children(sup.pid) if workers > 1 else [sup.pid]
        before = {p: pb.cpu_seconds(p) for p in procs}
        res = pb.run_wrk(lua, GATEWAY_PORT, 50, duration, setup)
        used = {p: pb.cpu_seconds(p) - before[p] for p in procs}
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(30)
    total = sum(used.values())
    shares = sorted((u / total if total else 0.0) for u in used.values())
    return {"rps": res["rps"], "cpu_us": total / res["requests"] * 1e6, "min_share": shares[0],
            "max_share": shares[-1], "p99": res["p99"], "errors": res["errors"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    args = ap.parse_args()
    missing = [t for t in ("wrk", "nginx") if shutil.which(t) is None]
    if missing:
        print(f"workers_bench: {', '.join(missing)} not found: apt-get install -y wrk nginx", file=sys.stderr)
        return 1
    counts = [int(n) for n in args.workers.split(",")]
    results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lua = work / "pctl.lua"
        lua.write_text(pb.WRK_LUA)
        nginx = subprocess.Popen(["nginx", "-c", str(pb.nginx_conf(work, True))])
        try:
            pb.wait_port(pb.UPSTREAM_PORT)
            for r in range(args.rounds):
                print(f"round {r + 1} of {args.rounds}", file=sys.stderr)
                for n in counts:
                    results[n].append(measure(work, lua, n, args.duration))
                    time.sleep(0.5)
        finally:
            nginx.send_signal(signal.SIGTERM)
            nginx.wait(10)
    base = statistics.median(r["cpu_us"] for r in results[counts[0]])
    print(f"\n| workers | req/s | CPU µs/req (all workers) | vs {counts[0]} worker(s) | "
          "busiest / idlest worker's CPU share | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for n in counts:
        rs = results[n]
        cpu = statistics.median(r["cpu_us"] for r in rs)
        print(f"| {n} | {statistics.median(r['rps'] for r in rs):.0f} | {cpu:.1f} | {cpu / base:.2f} | "
              f"{statistics.median(r['max_share'] for r in rs):.2f} / {statistics.median(r['min_share'] for r in rs):.2f} | "
              f"{statistics.median(r['p99'] for r in rs):.1f} | {sum(r['errors'] for r in rs):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
