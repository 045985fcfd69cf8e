"""The Grafana dashboard is the generator's output and uses only metrics the prometheus plugin exports."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from triogate_prometheus import METRICS, exported_names

GRAFANA = Path(__file__).resolve().parent.parent / "grafana"
DASHBOARD = json.loads((GRAFANA / "triogate-dashboard.json").read_text())
NAME = re.compile(r"\btriogate_[a-z0-9_]+")


def exprs() -> list[str]:
    out = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    out += [a["expr"] for a in DASHBOARD["annotations"]["list"]]
    out += [v["definition"] for v in DASHBOARD["templating"]["list"] if "definition" in v]
    return out


def test_only_exported_metrics():
    used = {m for e in exprs() for m in NAME.findall(e)}
    assert used, "no triogate metric referenced"
    assert used <= exported_names(), sorted(used - exported_names())


def test_every_metric_family_has_a_panel():
    used = {m for e in exprs() for m in NAME.findall(e)}
    for spec in METRICS:
        assert any(u == spec.name or u.startswith(spec.name + "_") for u in used), spec.name


def test_panels_are_well_formed():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for p in DASHBOARD["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}"
            assert all(e["expr"].count("(") == e["expr"].count(")") for e in p["targets"])


def test_json_is_the_generator_output():
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.build() == DASHBOARD
