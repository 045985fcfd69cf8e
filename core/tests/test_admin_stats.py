"""Per-route counters (triogate.routestats), GET /stats, the last reload in /status, the admin UI's files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import triogate
from triogate.plugins import PluginRegistry
from triogate.routestats import BOUNDS_MS, RouteStats, merge_counts, quantile, summarize
from triogate.upstream import HTTPClient

TOKEN = "s3cret-admin-token-0123"


def config(upstream_url: str) -> dict:
    return {
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN},
        "upstreams": {"users": {"targets": [{"url": upstream_url}]}},
        "routes": {"users": {"paths": ["/api/users"], "upstream": "users"},
                   "broken": {"paths": ["/broken"], "upstream": "users"},
                   "quiet": {"paths": ["/quiet"], "upstream": "users"}},
    }


async def admin_get(gw, path: str, token: str | None = TOKEN, method: str = "GET"):
    client = HTTPClient(read_timeout=10.0)
    hdrs = [("authorization", f"Bearer {token}")] if token is not None else []
    try:
        return await client.fetch(method, gw.gateway.admin.url + path, headers=hdrs, timeout=10.0)
    finally:
        await client.aclose()


# ---------------------------------------------------------------------------- the counters


def test_record_counts_requests_errors_and_latency_buckets():
    stats = RouteStats()
    stats.record("a", 200, 0.0004)  # 0.25 < 0.4 ms <= 0.5 ms: bucket 1
    stats.record("a", 502, 0.0005)  # on a bound: that bucket (bounds are inclusive, like Prometheus' le)
    stats.record("a", 404, 0.012)   # a 4xx is no error
    stats.record("a", 200, 120.0)   # slower than the last bound: the overflow bucket
    stats.record(None, 404, 0.001)
    (a, none) = sorted(stats.rows(), key=lambda r: r["route"] is None)
    assert a["route"] == "a" and none["route"] is None
    assert sum(a["counts"]) == 4 and a["errors"] == 1
    assert a["counts"][1] == 2 and a["counts"][BOUNDS_MS.index(15)] == 1 and a["counts"][-1] == 1
    assert len(a["counts"]) == len(BOUNDS_MS) + 1
    assert sum(none["counts"]) == 1 and none["errors"] == 0


def test_quantiles_interpolate_within_the_bucket():
    counts = [0] * (len(BOUNDS_MS) + 1)
    assert quantile(counts, 0.5) is None
    i = BOUNDS_MS.index(10)  # the 7.5..10 ms bucket
    counts[i] = 100
    assert quantile(counts, 0.5) == pytest.approx(8.75)
    assert quantile(counts, 0.99) == pytest.approx(7.5 + 2.5 * 0.99)
    counts[-1] = 100  # half of them slower than the last bound
    assert quantile(counts, 0.99) == BOUNDS_MS[-1]
    assert quantile(counts, 0.25) == pytest.approx(8.75)
    assert merge_counts([counts, counts])[i] == 200


def test_rates_and_recent_quantiles_come_from_the_last_ten_seconds():
    stats = RouteStats()
    stats.tick(now=100.0)
    for _ in range(50):
        stats.record("a", 200, 0.001)
    for t in range(101, 112):  # 11 ticks: the ring keeps 11, the oldest is 10 s back
        stats.tick(now=float(t))
    for _ in range(20):
        stats.record("a", 500, 0.2)  # 150..250 ms
    (row,) = stats.rows(now=112.0)
    assert row["window_seconds"] == pytest.approx(11.0)  # oldest copy at t=101
    assert sum(row["counts"]) == 70 and sum(row["window_counts"]) == 20 and row["window_errors"] == 20
    s = summarize([row])
    assert s["requests"] == 70 and s["errors"] == 20
    assert s["requests_per_s"] == pytest.approx(20 / 11, abs=1e-3) and s["errors_per_s"] == s["requests_per_s"]
    assert 100 < s["p50_ms"] <= 250  # the slow recent ones, not the fast old ones
    # two workers: totals and rates add up, the histogram merges before the quantile
    both = summarize([row, {**row, "counts": [0] * len(row["counts"]), "errors": 0,
                            "window_counts": [0] * len(row["counts"]), "window_errors": 0}])
    assert both["requests"] == 70 and both["errors_per_s"] == s["errors_per_s"] and both["p50_ms"] == s["p50_ms"]


def test_record_is_cheap():
    """The budget is under 1 µs per request; a regression to something slow shows here."""
    import timeit

    stats = RouteStats()
    stats.record("a", 200, 0.001)
    n = 20000
    best = min(timeit.repeat(lambda: stats.record("a", 200, 0.0012), number=n, repeat=5)) / n
    assert best < 2e-6, f"{best * 1e9:.0f} ns per record"


# ---------------------------------------------------------------------------- the endpoints


async def test_stats_counts_each_route(gateway_factory, upstream_factory):
    async def handler(req: triogate.Request):
        if req.path.startswith("/broken"):
            return triogate.Response.text("boom", status=500)
        return {"ok": True}

    upstream = await upstream_factory(handler)
    gw = await gateway_factory(config(upstream.url))
    assert (await admin_get(gw, "/stats", token=None)).status == 401
    for _ in range(5):
        assert (await gw.client.get("/api/users/1")).status == 200
    for _ in range(2):
        assert (await gw.client.get("/broken")).status == 500
    assert (await gw.client.get("/nowhere")).status == 404

    r = await admin_get(gw, "/stats")
    assert r.status == 200 and r.headers.get("cache-control") == "no-store"
    body = r.json()
    assert body["bounds_ms"] == list(BOUNDS_MS) and body["window_seconds"] == 10
    assert body["workers"]["configured"] == 1 and body["workers"]["reporting"] == [0]
    rows = {row["route"]: row for row in body["routes"]}
    assert list(rows) == ["users", "broken", "quiet", None]  # config order, then the unmatched
    users, broken, quiet = rows["users"], rows["broken"], rows["quiet"]
    assert (users["requests"], users["errors"]) == (5, 0)
    assert (broken["requests"], broken["errors"]) == (2, 2)
    assert (quiet["requests"], quiet["errors"], quiet["p50_ms"]) == (0, 0, None)
    assert rows[None]["requests"] == 1
    assert 0 < users["p50_ms"] <= users["p99_ms"] < 1000
    assert users["requests_per_s"] > 0 and broken["errors_per_s"] > 0 and users["errors_per_s"] == 0
    assert sum(users["histogram"]) == 5
    (up,) = body["upstreams"]
    (target,) = up["targets"]
    assert target["url"] == upstream.url and target["healthy"] is True
    assert target["active_requests"] == 0 and target["open_connections"] >= 1  # the pooled keep-alive one
    assert "workers" not in target  # one process: no per-worker breakdown

    # a reload keeps the counters of the routes it keeps, and drops the routes it removes
    cfg = config(upstream.url)
    del cfg["routes"]["broken"], cfg["routes"]["quiet"]
    assert await gw.reload(cfg) == []
    rows = {row["route"]: row for row in (await admin_get(gw, "/stats")).json()["routes"]}
    assert list(rows) == ["users", None] and rows["users"]["requests"] == 5


async def test_status_tells_the_last_reload(nursery, upstream, tmp_path: Path):
    cfg = tmp_path / "gateway.toml"
    good = (f'[gateway]\nlisten = ["127.0.0.1:0"]\naccess_log = "off"\n'
            f'[admin]\nlisten = "127.0.0.1:0"\ntoken = "{TOKEN}"\n'
            f'[upstreams.u]\ntargets = [{{ url = "{upstream.url}" }}]\n[routes.a]\npaths = ["/a"]\nupstream = "u"\n')
    cfg.write_text(good)
    gateway = triogate.Gateway(triogate.load_config(cfg), config_path=cfg, registry=PluginRegistry(autoload=False))
    stop = trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        await triogate.serve(gateway, shutdown_trigger=stop.wait, task_status=task_status)

    await nursery.start(run)
    gw = SimpleNamespace(gateway=gateway)
    try:
        status = (await admin_get(gw, "/status")).json()
        assert status["last_reload"] is None
        assert [w["worker"] for w in status["per_worker"]] == [0]

        cfg.write_text(good + '[routes.b]\npaths = ["/b"]\nupstream = "missing"\n')
        assert (await admin_get(gw, "/reload", method="POST")).status == 422
        last = (await admin_get(gw, "/status")).json()["last_reload"]
        assert last["ok"] is False and any("routes.b.upstream" in e for e in last["errors"])

        cfg.write_text(good + '[routes.b]\npaths = ["/b"]\nupstream = "u"\n')
        assert (await admin_get(gw, "/reload", method="POST")).status == 200
        status = (await admin_get(gw, "/status")).json()
        assert status["last_reload"]["ok"] is True and status["last_reload"]["errors"] == []
        assert status["last_reload"]["config_version"] == status["config_version"] == 2
    finally:
        stop.set()


async def test_ui_files_are_served_without_the_token(gateway_factory, upstream):
    gw = await gateway_factory(config(upstream.url))
    r = await admin_get(gw, "/ui", token=None)
    assert r.status == 308 and r.headers.get("location") == "/ui/"
    r = await admin_get(gw, "/ui/", token=None)
    assert r.status == 200 and r.headers.get("content-type") == "text/html; charset=utf-8"
    assert r.headers.get("content-security-policy").startswith("default-src 'self'")
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("cache-control") == "no-store"
    page = r.content.decode()
    assert '<script src="app.js" defer></script>' in page and "<style" not in page and " style=" not in page
    assert "http://" not in page and "https://" not in page  # no external assets
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        r = await admin_get(gw, f"/ui/{name}", token=None)
        assert r.status == 200 and r.headers.get("content-type").startswith(ctype), name
        assert r.headers.get("x-content-type-options") == "nosniff"
    assert TOKEN not in (await admin_get(gw, "/ui/app.js", token=None)).content.decode()
    for path in ("/ui/nope.js", "/ui/index.html/x", "/ui/ui/"):
        r = await admin_get(gw, path, token=None)
        assert r.status == 404, path
    for path in ("/ui/../status", "/ui/%2e%2e/status"):  # the server resolves dot segments first
        assert (await admin_get(gw, path, token=None)).status == 401, path
    r = await admin_get(gw, "/ui/", token=None, method="POST")
    assert r.status == 405
    r = await admin_get(gw, "/ui/", token=None, method="HEAD")
    assert r.status == 200
    # the data the page shows still needs the token
    for path in ("/stats", "/status", "/routes", "/upstreams", "/plugins"):
        assert (await admin_get(gw, path, token=None)).status == 401, path


async def test_stats_rates_follow_the_ticks(gateway_factory, upstream):
    """The admin API's background task ticks the ring once a second: the rate covers the window."""
    gw = await gateway_factory(config(upstream.url))
    for _ in range(3):
        assert (await gw.client.get("/api/users")).status == 200
    await trio.sleep(1.2)
    (users,) = [r for r in (await admin_get(gw, "/stats")).json()["routes"] if r["route"] == "users"]
    assert users["requests"] == 3 and 0 < users["requests_per_s"] <= 3 / 1.0
