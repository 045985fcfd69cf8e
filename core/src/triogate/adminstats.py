"""The whole gateway's live numbers for the admin API: ``/stats``, and ``/upstreams`` and ``/status``
with ``workers > 1``.

Any worker may answer an admin request (each binds the admin address with SO_REUSEPORT), so
each supervised worker publishes its numbers once a second, off the request path, to
``<pid file>.stats.<worker>.json`` (:class:`~triogate.reloadstate.ReloadState`), and the one
that answers merges its own live numbers with the other workers' files:

- route counters and latency histograms add up bucket by bucket, and the quantiles are
  computed from the merged histogram; request and error rates add up;
- per upstream target, ``active_requests`` and ``open_connections`` add up; ``healthy`` holds
  only if every worker finds the target healthy (health checks run in each worker), and
  ``circuit`` is the worst worker's (``open`` > ``half-open`` > ``closed``); ``workers`` lists
  each worker's view;
- a file older than :data:`STALE_AFTER` seconds, or whose process is gone, is ignored (a
  restarted worker starts counting from zero).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import trio

from .reloadstate import ReloadState
from .routestats import BOUNDS_MS, WINDOW, RouteStats, summarize
from .runtime import Runtime

__all__ = ["PUBLISH_INTERVAL", "STALE_AFTER", "GatewayStats"]

log = logging.getLogger("triogate.admin")

#: seconds between two snapshots of a worker's counters (rates) and two published files
PUBLISH_INTERVAL = 1.0
#: a worker's file older than this is left out of the whole gateway's numbers
STALE_AFTER = 3.0
_CIRCUIT_RANK = {"closed": 0, "half-open": 1, "open": 2}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class GatewayStats:
    """This process's numbers (``gateway``: what :class:`~triogate.admin.AdminGateway` offers) and
    the merge with the other workers' published ones."""

    def __init__(self, gateway: Any, runtime: Runtime) -> None:
        self.gateway = gateway
        self.runtime = runtime

    @property
    def _state(self) -> ReloadState | None:
        return self.gateway.reload_state if self.runtime.supervised else None

    # ------------------------------------------------------------------ this worker

    def snapshot(self) -> dict[str, Any]:
        """This process's numbers now (what a worker publishes)."""
        rt = self.runtime
        route_stats: RouteStats = self.gateway.route_stats
        return {
            "worker": rt.worker,
            "pid": rt.pid,
            "time": time.time(),
            "started_at": rt.started_at,
            "config_version": rt.config_version,
            "reloads": rt.reloads,
            "last_reload": self.gateway.last_reload,
            "draining": rt.draining,
            "open_connections": rt.open_connections,
            "in_flight": rt.in_flight,
            "routes": route_stats.rows(),
            "upstreams": [up.status() for up in self.gateway.pipeline.upstreams.values()],
        }

    async def run(self) -> None:
        """Once a second: keep a copy of the counters (rates), and publish them with workers."""
        state = self._state
        while True:
            await trio.sleep(PUBLISH_INTERVAL)
            self.gateway.route_stats.tick()
            if state is not None:
                try:
                    state.write_stats(self.runtime.worker, self.snapshot())
                except OSError as exc:  # a full disk costs the merged view, never the gateway
                    log.warning("cannot write the worker's stats next to %s: %s", state.pid_file, exc)
                    await trio.sleep(30)

    # ------------------------------------------------------------------ every worker

    def snapshots(self) -> list[dict[str, Any]]:
        """This process's live numbers first, then every other worker's fresh published ones."""
        own = self.snapshot()
        out = [own]
        state = self._state
        if state is None:
            return out
        now = own["time"]
        for i in state.stats_workers():
            if i == own["worker"]:
                continue
            snap = state.read_stats(i)
            if snap is None or not isinstance(snap.get("time"), (int, float)) or now - snap["time"] > STALE_AFTER:
                continue
            if snap.get("pid") == own["pid"] or not _alive(snap.get("pid")):
                continue
            out.append(snap)
        return out

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: per route totals, rates and quantiles; upstream targets; which workers count."""
        snaps = self.snapshots()
        # the running config's routes in match order (a route a reload removed is left out)
        by_route: dict[str | None, list[dict[str, Any]]] = {
            name: [] for name in dict.fromkeys(r.name for r in self.gateway.pipeline.router.routes)}
        unmatched: list[dict[str, Any]] = []
        for snap in snaps:
            for row in snap.get("routes", ()):
                rows = unmatched if row["route"] is None else by_route.get(row["route"])
                if rows is not None:
                    rows.append(row)
        routes = [{"route": name, **summarize(rows)} for name, rows in by_route.items()]
        if unmatched:
            routes.append({"route": None, **summarize(unmatched)})
        return {
            "time": round(snaps[0]["time"], 3),
            "window_seconds": WINDOW,
            "bounds_ms": list(BOUNDS_MS),
            "workers": self._workers(snaps),
            "routes": routes,
            "upstreams": merge_upstreams(snaps),
        }

    def upstreams(self) -> list[dict[str, Any]]:
        """``GET /upstreams``: every worker's view of the targets, merged."""
        return merge_upstreams(self.snapshots())

    def status(self, own: dict[str, Any]) -> dict[str, Any]:
        """``GET /status``: this worker's ``own`` status, with the whole gateway's sums and the last reload."""
        snaps = self.snapshots()
        out = dict(own)
        out["open_connections"] = sum(s["open_connections"] for s in snaps)
        out["in_flight"] = sum(s["in_flight"] for s in snaps)
        out["per_worker"] = [
            {"worker": s["worker"], "pid": s["pid"], "config_version": s["config_version"],
             "uptime_seconds": round(s["time"] - s["started_at"], 3), "reloads": s["reloads"],
             "draining": s["draining"], "open_connections": s["open_connections"], "in_flight": s["in_flight"]}
            for s in sorted(snaps, key=lambda s: s["worker"])
        ]
        out["last_reload"] = self._last_reload(snaps)
        return out

    def _workers(self, snaps: list[dict[str, Any]]) -> dict[str, Any]:
        now = snaps[0]["time"]
        return {
            "configured": self.gateway.config.gateway.workers,  # [gateway] workers (``run --workers`` may differ)
            "reporting": sorted(s["worker"] for s in snaps),
            "answered_by": snaps[0]["worker"],
            "ages_seconds": {str(s["worker"]): round(now - s["time"], 3) for s in snaps},
        }

    def _last_reload(self, snaps: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The newest reload outcome: the whole gateway's (the reload state file) or a worker's own.

        The file is the one ``triogate reload`` reads (every worker, and the supervisor's own
        refusal of an invalid file); an admin ``POST /reload`` of a single process writes none.
        """
        found: list[dict[str, Any]] = []
        state = self.gateway.reload_state
        if state is not None:
            outcome = state.last_outcome()
            if outcome is not None:
                found.append({"time": outcome.get("time", 0), "ok": outcome.get("ok", False),
                              "errors": outcome.get("errors", []), "workers": outcome.get("workers", [])})
        for s in snaps:
            lr = s.get("last_reload")
            if lr:
                found.append({**lr, "workers": [{"worker": s["worker"], "pid": s["pid"], "ok": lr["ok"],
                                                 "errors": lr["errors"], "config_version": lr["config_version"]}]})
        if not found:
            return None
        newest = max(found, key=lambda r: r["time"])
        newest["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest["time"]))
        return newest


def merge_upstreams(snaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The upstreams of every snapshot, the first one's order first; targets merged by URL."""
    upstreams: dict[str, dict[str, Any]] = {}
    views: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for snap in snaps:
        for up in snap.get("upstreams", ()):
            merged = upstreams.setdefault(up["name"], {**up, "targets": []})
            for t in up["targets"]:
                key = (up["name"], t["url"])
                if key not in views:
                    views[key] = []
                    merged["targets"].append(dict(t))
                views[key].append((snap["worker"], t))
    for up in upstreams.values():
        for t in up["targets"]:
            seen = views[up["name"], t["url"]]
            t["active_requests"] = sum(v["active_requests"] for _, v in seen)
            t["open_connections"] = sum(v["open_connections"] for _, v in seen)
            t["healthy"] = all(v["healthy"] for _, v in seen)
            t["circuit"] = max((v["circuit"] for _, v in seen), key=lambda c: _CIRCUIT_RANK.get(c, 0))
            if len(snaps) > 1:
                t["workers"] = [{"worker": w, "healthy": v["healthy"], "circuit": v["circuit"],
                                 "active_requests": v["active_requests"], "open_connections": v["open_connections"]}
                                for w, v in sorted(seen, key=lambda x: x[0])]
    return list(upstreams.values())
