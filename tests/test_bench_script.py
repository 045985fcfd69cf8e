"""bench/proxy_bench.py cannot rot unnoticed: its arguments parse, its nginx and gateway configs are
valid for the installed plugins, every setup's request (path and headers, the JWT it builds, the
API key, the basic-auth hash) gets a 200 from a real gateway built from that config, and its report
prints the rows of issue 12. No wrk, no nginx, nothing timed: that is `make bench`'s job."""

from __future__ import annotations

import importlib.util
import math
import sys
import tomllib
import types
from pathlib import Path

import pytest
import trio
import triogate
from triogate.config import parse_config
from triogate.plugins import PluginRegistry

BENCH = Path(__file__).resolve().parents[1] / "bench" / "proxy_bench.py"


@pytest.fixture(scope="module")
def bench() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("proxy_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["proxy_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("proxy_bench", None)


def test_arguments(bench) -> None:
    args = bench.parse_args([])
    assert (args.duration, args.rounds) == (6, 3)
    assert {s.key for s in args.setups} == {s.key for s in bench.setups()}
    quick = bench.parse_args(["--quick"])
    assert (quick.duration, quick.c1_duration, quick.rounds) == (2, 1, 1)
    # a plugin setup brings the route it is compared with
    only = bench.parse_args(["--only", "p-acl"])
    assert [s.key for s in only.setups] == ["off-bare", "p-key-auth", "p-acl"]
    assert {s.group for s in bench.parse_args(["--only", "peers"]).setups} == {"peers"}
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "no-such-setup"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])


def test_nginx_configs(bench, tmp_path: Path) -> None:
    upstream = bench.nginx_conf(tmp_path, True).read_text()
    for needle in (f"listen 127.0.0.1:{bench.UPSTREAM_PORT}", "location /nostore/", '"no-store"',
                   "location /cacheable/", "max-age=86400", "location = /introspect"):
        assert needle in upstream
    assert upstream.count("{") == upstream.count("}")
    proxy = bench.nginx_conf(tmp_path, False).read_text()
    assert f"listen 127.0.0.1:{bench.NGINX_PORT}" in proxy and "proxy_pass http://backend" in proxy


def test_parse_wrk_output(bench) -> None:
    out = """Running 2s test @ http://127.0.0.1:18084/users/42
  1 threads and 50 connections
  8123 requests in 2.00s, 3.10MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4061.50
Transfer/sec:      1.55MB
PCTL 7100 20400 35000 51000
"""
    got = bench.parse_wrk(out)
    assert got["rps"] == 4061.5 and got["requests"] == 8123 and got["errors"] == 3
    assert (got["p50"], got["p99"], got["p999"], got["max"]) == (7.1, 20.4, 35.0, 51.0)
    with pytest.raises(RuntimeError):
        bench.parse_wrk("wrk: connection refused")


def test_report_prints_every_issue_row(bench) -> None:
    metrics = {"rps": 1000.0, "p50": 5.0, "p99": 20.0, "p999": 30.0, "max": 40.0, "requests": 1, "errors": 0,
               "cpu_us": 200.0, "p50_c1": 0.3}
    chosen = bench.setups()
    rounds = [{s.key: dict(metrics) for s in chosen}, {s.key: dict(metrics, rps=3000.0) for s in chosen}]
    for rnd, added in zip(rounds, (12.0, 14.0), strict=True):  # paired with a baseline measured just before
        rnd["p-jwt"]["added_us"] = added
    res = bench.medians(rounds)
    assert res["log-bare"]["rps"] == 2000.0
    rows = bench.issue_rows(res)
    assert [r[0] for r in rows] == [
        "access log to a file (default format)",
        "jwt (HS256) + rate-limit (memory) + cache (lookup, upstream says no-store)",
        "cache hit",
        "access log on (to a file, default JSON format), no plugins",
        "p99 at c=50",
        "added p50 at c=1 over direct (log on)",
        "cache hit p99 at c=50",
    ]
    assert all(r[4] is not None for r in rows)
    text = bench.report(res, chosen, rounds)
    assert "p99.9" in text and "jwt (HS256)" in text and "nan" not in text
    plugins = bench.plugin_rows(res, chosen)
    assert {r["plugin"] for r in plugins} >= {"jwt", "key-auth", "rate-limit", "cache", "cors", "request-transform"}
    assert {r["key"]: r["added_us"] for r in plugins if r["added_us"]} == {"p-jwt": 13.0}
    # a setup left out is reported as not measured, never as met
    partial = bench.issue_rows({"off-bare": res["off-bare"]})
    assert all(r[4] is None for r in partial) and math.isnan(float(partial[0][2]))


async def test_every_setup_is_answered_by_the_generated_gateway(bench, gateway_factory, upstream_factory) -> None:
    """The generated config against an upstream that answers like the bench's nginx."""

    async def like_nginx(request: triogate.Request) -> triogate.Response:
        await request.body.read(65536)
        if request.path == "/introspect":
            return triogate.Response(200, [("content-type", "application/json")], bench.INTROSPECTION.encode())
        headers = [("content-type", "application/json")]
        if request.path.startswith("/nostore/"):
            headers.append(("cache-control", "no-store"))
        elif request.path.startswith("/cacheable/"):
            headers.append(("cache-control", "public, max-age=86400"))
        return triogate.Response(200, headers, bench.PAYLOAD.encode())

    up = await upstream_factory(like_nginx)
    raw = tomllib.loads(bench.triogate_toml(0, "off", upstream=up.url))
    del raw["gateway"]["hooks"]  # relative to the bench's work directory; registered below instead
    raw["gateway"]["listen"] = ["127.0.0.1:0"]
    registry = PluginRegistry(autoload=True)
    parse_config(raw, "<bench>", registry=registry)  # every plugin config is valid
    hook = types.ModuleType("bench_local_hook")
    exec(bench.HOOK_MODULE, hook.__dict__)  # noqa: S102 - the bench's own hook module
    gw = await gateway_factory(raw, registry=registry, hooks=[hook])
    for setup in bench.setups():
        if setup.server not in ("off", "log"):
            continue
        with trio.fail_after(10):
            first = await gw.client.get(setup.path, headers=list(setup.headers))
            second = await gw.client.get(setup.path, headers=list(setup.headers))
        assert (first.status, second.status) == (200, 200), (setup.key, first.status, first.content[:300])
        assert second.content == bench.PAYLOAD.encode(), setup.key
        status = second.headers.get("cache-status") or ""
        if setup.key in ("log-hit", "p-cache-hit"):
            assert "hit" in status, (setup.key, status)
        if setup.key in ("log-full", "p-cache-miss"):
            assert "hit" not in status and "fwd=" in status, (setup.key, status)


def test_compare_measures_the_core_setups_with_another_interpreter_side_by_side(bench) -> None:
    args = bench.parse_args(["--only", "core,p-jwt", "--compare", sys.executable])
    before = [s for s in args.setups if s.key.startswith(bench.BEFORE)]
    assert {s.key for s in before} == {bench.BEFORE + k for k in ("off-bare", "off-hook", "log-bare", "log-full",
                                                                  "log-hit")}
    assert {s.server for s in before} == {"off-before", "log-before"}  # never the per-plugin routes
    with pytest.raises(SystemExit):
        bench.parse_args(["--compare", "/no/such/python"])
    metrics = {"rps": 1000.0, "p50": 5.0, "p99": 20.0, "p999": 30.0, "max": 40.0, "requests": 1, "errors": 0,
               "cpu_us": 200.0, "p50_c1": 0.3}
    res = {s.key: dict(metrics) for s in bench.setups() + before}
    res["log-hit"]["cpu_us"] = 100.0  # now: the hit costs half the bare route
    res[bench.BEFORE + "log-hit"]["cpu_us"] = 160.0
    text = bench.report(res, bench.setups() + before, [res])
    hit_row = next(line for line in text.splitlines() if line.startswith("| cache hit  "))
    assert "| 1.25 " in hit_row and "| 2.00 " in hit_row  # by CPU: before, then now
    assert any(line.startswith("| setup") and "| before " in line and "| now " in line for line in text.splitlines())
