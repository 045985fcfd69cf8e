"""What the per-route counters (triogate.routestats) cost per request, in nanoseconds of CPU.

Times the statement ``Gateway.finish`` runs for every request, on a real request context of a
loaded config, against the same statement without the record call:

    .venv/bin/python bench/routestats_bench.py
"""

from __future__ import annotations

import timeit

from triogate import Gateway, Request, loads_config
from triogate.plugins import PluginRegistry

CONFIG = """
[upstreams.u]
targets = [{ url = "http://127.0.0.1:9" }]
[routes.a]
paths = ["/a"]
upstream = "u"
"""


def main(n: int = 500_000, repeat: int = 7) -> dict[str, float]:
    gateway = Gateway(loads_config(CONFIG), registry=PluginRegistry(autoload=False))
    pipeline = gateway.pipeline
    ctx = pipeline.context(Request("GET", "/a", headers=[("host", "x")], client=("127.0.0.1", 5555)))
    ctx.route = pipeline.router.routes[0]
    ctx.status = 200
    env = {"self": gateway, "ctx": ctx}
    with_record = "route = ctx.route\nself.route_stats.record(route.name if route is not None else None, ctx.status, ctx.elapsed)"
    without = "route = ctx.route"
    out = {}
    for label, stmt in (("with", with_record), ("without", without)):
        out[label] = min(timeit.repeat(stmt, globals=env, number=n, repeat=repeat)) / n * 1e9
    ctx.status = 502
    out["with, a 5xx"] = min(timeit.repeat(with_record, globals=env, number=n, repeat=repeat)) / n * 1e9
    return out


if __name__ == "__main__":
    r = main()
    print(f"per request: {r['with'] - r['without']:.0f} ns for the record call "
          f"({r['with, a 5xx'] - r['without']:.0f} ns for a 5xx), {r['without']:.0f} ns for the rest of the statement")
