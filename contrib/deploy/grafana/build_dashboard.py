"""Writes triogate-dashboard.json (run it after changing the panels; a test checks the result)."""

from __future__ import annotations

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}
R = 'route=~"$route"'


def panel(pid: int, title: str, exprs: list[tuple[str, str]], x: int, y: int, w: int = 12, h: int = 8,
          kind: str = "timeseries", unit: str = "short", description: str = "") -> dict:
    return {
        "id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]}}
        if kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": legend, "datasource": DS}
                    for i, (e, legend) in enumerate(exprs)],
    }


def row(pid: int, title: str, y: int) -> dict:
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            "panels": []}


def quantiles(metric: str, by: str, sel: str) -> list[tuple[str, str]]:
    return [(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{sel}}}[$__rate_interval])))",
             f"p{int(q * 100)} {{{{{by}}}}}") for q in (0.5, 0.95, 0.99)]


def build() -> dict:
    panels = [
        row(1, "Overview", 0),
        panel(2, "Requests / s", [(f"sum(rate(triogate_requests_total{{{R}}}[$__rate_interval]))", "req/s")],
              0, 1, 4, 4, "stat", "reqps"),
        panel(3, "5xx ratio", [((f'sum(rate(triogate_requests_total{{{R},status_class="5xx"}}[$__rate_interval]))'
                                 f" / sum(rate(triogate_requests_total{{{R}}}[$__rate_interval]))"), "5xx")],
              4, 1, 4, 4, "stat", "percentunit"),
        panel(4, "p99 latency", [(("histogram_quantile(0.99, sum by (le) (rate("
                                   f"triogate_request_duration_seconds_bucket{{{R}}}[$__rate_interval])))"), "p99")],
              8, 1, 4, 4, "stat", "s"),
        panel(5, "Open connections", [("sum(triogate_open_connections)", "connections")], 12, 1, 4, 4, "stat"),
        panel(6, "In flight", [("sum(triogate_requests_in_flight)", "in flight")], 16, 1, 4, 4, "stat"),
        panel(7, "Config version / failed reloads (1h)",
              [("max(triogate_config_version)", "version"),
               ('sum(increase(triogate_config_reloads_total{outcome="failed"}[1h]))', "failed reloads")],
              20, 1, 4, 4, "stat"),
        row(8, "Traffic", 5),
        panel(9, "Requests by route", [(f"sum by (route) (rate(triogate_requests_total{{{R}}}[$__rate_interval]))",
                                        "{{route}}")], 0, 6, unit="reqps"),
        panel(10, "Responses by status class",
              [(f"sum by (status_class) (rate(triogate_requests_total{{{R}}}[$__rate_interval]))", "{{status_class}}")],
              12, 6, unit="reqps"),
        panel(11, "Top consumers", [((f"topk(10, sum by (consumer) (rate(triogate_requests_total{{{R},consumer!=\"\"}}"
                                      "[$__rate_interval])))"), "{{consumer}}")], 0, 14, unit="reqps",
              description="Needs consumer_label = true in [plugins.prometheus]."),
        panel(12, "Bytes in / out", [(f"sum(rate(triogate_request_bytes_total{{{R}}}[$__rate_interval]))", "in"),
                                     (f"sum(rate(triogate_response_bytes_total{{{R}}}[$__rate_interval]))", "out")],
              12, 14, unit="Bps"),
        row(13, "Latency", 22),
        panel(14, "Gateway latency by route", quantiles("triogate_request_duration_seconds", "route", R), 0, 23, unit="s"),
        panel(15, "Upstream latency by upstream", quantiles("triogate_upstream_duration_seconds", "upstream", R),
              12, 23, unit="s"),
        row(16, "Security and limits", 31),
        panel(17, "Auth failures by plugin and reason",
              [(f"sum by (plugin, reason) (rate(triogate_auth_failures_total{{{R}}}[$__rate_interval]))",
                "{{plugin}} {{reason}}")], 0, 32, unit="reqps"),
        panel(18, "Rate-limited requests",
              [(f"sum by (route, plugin) (rate(triogate_rate_limited_total{{{R}}}[$__rate_interval]))",
                "{{route}} ({{plugin}})")], 12, 32, unit="reqps"),
        row(19, "Cache", 40),
        panel(20, "Cache results", [(f"sum by (result) (rate(triogate_cache_requests_total{{{R}}}[$__rate_interval]))",
                                     "{{result}}")], 0, 41, unit="reqps"),
        panel(21, "Cache hit ratio", [((f'sum(rate(triogate_cache_requests_total{{{R},result=~"hit|stale"}}'
                                        "[$__rate_interval])) / sum(rate(triogate_cache_requests_total"
                                        f"{{{R}}}[$__rate_interval]))"), "hit ratio")], 12, 41, unit="percentunit"),
        row(22, "Upstreams", 49),
        panel(23, "Unhealthy targets", [("min by (upstream, target) (triogate_upstream_target_healthy) == 0",
                                         "{{upstream}} {{target}}")], 0, 50, 8, unit="short",
              description="Targets marked unhealthy by active health checks (0)."),
        panel(24, "Open circuits", [('max by (upstream, target) (triogate_upstream_circuit_state{state!="closed"})',
                                     "{{upstream}} {{target}}")], 8, 50, 8,
              description="1 while a target's circuit breaker is open or half-open."),
        panel(25, "Upstream errors (no response)",
              [(f"sum by (upstream) (rate(triogate_upstream_errors_total{{{R}}}[$__rate_interval]))", "{{upstream}}")],
              16, 50, 8, unit="reqps"),
    ]
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
                      "pluginName": "Prometheus"}],
        "title": "triogate",
        "uid": "triogate-overview",
        "description": "Traffic, latency, errors, auth failures, rate limits, cache and upstream health of triogate"
                       " gateways (metrics of the triogate-prometheus plugin).",
        "tags": ["triogate", "api-gateway"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "route", "label": "Route", "type": "query", "datasource": DS,
             "query": {"query": "label_values(triogate_requests_total, route)", "refId": "routes"},
             "definition": "label_values(triogate_requests_total, route)", "includeAll": True, "multi": True,
             "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2, "sort": 1},
        ]},
        "annotations": {"list": [
            {"name": "Config reloads", "datasource": DS, "enable": True, "iconColor": "blue",
             "expr": "changes(max(triogate_config_version)[2m:30s]) > 0"},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("triogate-dashboard.json")
    out.write_text(json.dumps(build(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
