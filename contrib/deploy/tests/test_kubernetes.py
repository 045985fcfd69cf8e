"""Kubernetes manifests: valid YAML with the expected kinds, consistent with each other and with
the gateway.toml they carry (which must load with the installed plugins)."""

from __future__ import annotations

from pathlib import Path

import yaml
from triogate import loads_config
from triogate.testing import load_gateway

K8S = Path(__file__).resolve().parent.parent / "kubernetes"


def docs(path: Path) -> list[dict]:
    out = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for d in out:
        needed = {"apiVersion", "kind"} if d.get("kind") == "Kustomization" else {"apiVersion", "kind", "metadata"}
        assert needed <= set(d), (path.name, d)
    return out


def every() -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted(K8S.rglob("*.yaml")):
        for d in docs(path):
            if d["kind"] == "Kustomization":
                continue
            key = (d["kind"], d["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            found[key] = d
    return found


def test_kinds():
    kinds = {k for k, _ in every()}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy",
            "Secret", "ServiceMonitor"} <= kinds
    names = set(every())
    assert {("Deployment", "triogate"), ("Deployment", "redis"), ("Service", "redis"), ("Service", "triogate"),
            ("Service", "triogate-admin"), ("ConfigMap", "triogate-config")} <= names


def test_kustomization_lists_existing_files():
    (k,) = docs(K8S / "kustomization.yaml")
    assert k["kind"] == "Kustomization"
    for res in k["resources"]:
        assert (K8S / res).is_file(), res
    listed = {K8S / r for r in k["resources"]}
    top = {p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert top == listed  # optional/ holds what needs CRDs or a real secret


def gateway_toml() -> str:
    return every()[("ConfigMap", "triogate-config")]["data"]["gateway.toml"]


def test_configmap_gateway_toml_is_valid_with_the_installed_plugins():
    cfg = loads_config(gateway_toml(), "configmap", env={"TRIOGATE_ADMIN_TOKEN": "t" * 32})
    load_gateway(cfg, autoload=True)  # every plugin table validates
    assert cfg.gateway.workers >= 2
    assert cfg.admin.allow_remote and cfg.admin.token == "t" * 32
    assert "prometheus" in cfg.plugins
    redis_users = [p for p in (cfg.plugins | cfg.routes["app"].plugins).values() if "redis" in p]
    assert redis_users and all(p["redis"]["url"].startswith("redis://redis:6379") for p in redis_users)


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def container(deploy: dict) -> dict:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


def test_gateway_deployment():
    objs = every()
    d = objs[("Deployment", "triogate")]
    assert d["spec"]["replicas"] >= 2
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
    c = container(d)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    cfg = loads_config(gateway_toml(), env={"TRIOGATE_ADMIN_TOKEN": "t" * 32})
    assert ports["http"] == port_of(cfg.gateway.listen[0].address)
    assert ports["admin"] == port_of(cfg.admin.listen)
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    env = {e["name"]: e for e in c["env"]}
    ref = env["TRIOGATE_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = objs[("Secret", ref["name"])]
    assert ref["key"] in secret["stringData"]
    assert env["PROMETHEUS_MULTIPROC_DIR"]["value"].startswith("/tmp/")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "triogate-config"
    assert mounts["config"] == "/etc/triogate" and "/etc/triogate/gateway.toml" in c["args"]
    assert mounts["tmp"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > cfg.gateway.timeouts.drain + 5


def test_services_select_pods_and_name_ports():
    objs = every()
    for (kind, name), svc in objs.items():
        if kind != "Service":
            continue
        deploy = objs[("Deployment", "triogate" if name.startswith("triogate") else name)]
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items(), name
        port_names = {p["name"] for p in container(deploy)["ports"]}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in port_names, (name, p)


def test_monitoring_targets_the_admin_service():
    objs = every()
    sm = objs[("ServiceMonitor", "triogate")]
    admin = objs[("Service", "triogate-admin")]
    assert sm["spec"]["selector"]["matchLabels"].items() <= admin["metadata"]["labels"].items()
    (ep,) = sm["spec"]["endpoints"]
    assert ep["path"] == "/metrics" and ep["port"] == "admin"
    assert ep["authorization"]["credentials"]["name"] == "triogate-admin"
    # the public Service must not carry the admin label (ServiceMonitor would scrape it twice)
    assert "app.kubernetes.io/component" not in objs[("Service", "triogate")]["metadata"]["labels"]
