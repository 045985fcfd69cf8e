"""The README's traffic-management examples: the default gateway.toml's canary (/api/canary/users),
mirrored (/api/mirrored/users) and fallback (/api/recommendations, and the canary's fallback to v1)
routes, in front of the demo services (on free loopback ports instead of the fixed demo ones)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import trio
from triogate.testing import free_port
from triogate_demo import SERVICES, make_handler
from triogate_fallback import FallbackPlugin
from triogate_mirror import MirrorPlugin
from triogate_traffic_split import TrafficSplitPlugin

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {"traffic-split": TrafficSplitPlugin, "mirror": MirrorPlugin, "fallback": FallbackPlugin}


async def _demo_gateway(upstream_factory: Any, gateway_factory: Any, routes: list[str],
                        without: frozenset[str] = frozenset()) -> tuple[Any, dict[str, Any]]:
    """gateway.toml's ``routes`` and every upstream, each demo service on a free port (those in
    ``without`` on a port nobody listens on); returns the gateway and the demo servers by instance."""
    raw = tomllib.loads((ROOT / "gateway.toml").read_text())
    upstreams = raw["upstreams"]
    servers: dict[str, Any] = {}
    urls: dict[str, list[dict[str, str]]] = {}
    for service, instance, _port in SERVICES:
        if service in without:
            urls.setdefault(service, []).append({"url": f"http://127.0.0.1:{free_port()}"})
            continue
        servers[instance] = await upstream_factory(make_handler(service, instance), name=instance)
        urls.setdefault(service, []).append({"url": servers[instance].url})
    for name, targets in urls.items():
        upstreams[name]["targets"] = targets
        upstreams[name].pop("health_check", None)
    # the demo never starts recommendations: keep it down, on a port that is surely free here
    upstreams["recommendations"]["targets"] = [{"url": f"http://127.0.0.1:{free_port()}"}]
    config = {"upstreams": upstreams, "routes": {name: raw["routes"][name] for name in routes}}
    return await gateway_factory(config, plugins=PLUGINS), servers


async def test_canary_sends_one_in_ten_to_v2_and_x_canary_forces_it(upstream_factory, gateway_factory) -> None:
    gw, servers = await _demo_gateway(upstream_factory, gateway_factory, ["canary"])
    served: Counter[str] = Counter()
    for _ in range(20):
        r = await gw.client.get("/api/canary/users/1")
        assert r.status == 200, r.content
        served[r.headers["x-served-by"]] += 1
        if r.headers["x-served-by"] == "users-v2":
            assert r.json() == {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com", "handle": "ada"}
        else:
            assert r.json() == {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com"}
    # smooth weighted round-robin: exactly 18 of 20 to users (its two instances alternate), 2 to v2
    assert served == {"users-1": 9, "users-2": 9, "users-v2": 2}
    for _ in range(3):
        r = await gw.client.get("/api/canary/users/2", headers={"x-canary": "1"})
        assert r.headers["x-served-by"] == "users-v2" and r.json()["handle"] == "grace"
        assert "x-fallback" not in r.headers
    assert len(servers["users-v2"].requests) == 5
    assert {req.path for req in servers["users-v2"].requests} == {"/users/1", "/users/2"}  # prefix stripped


async def test_canary_falls_back_to_v1_when_v2_is_down(upstream_factory, gateway_factory) -> None:
    gw, servers = await _demo_gateway(upstream_factory, gateway_factory, ["canary"], frozenset({"users-v2"}))
    r = await gw.client.get("/api/canary/users/2", headers={"x-canary": "1"})
    assert r.status == 200, r.content
    assert r.headers["x-fallback"] == "upstream:users"
    assert r.headers["x-served-by"] in ("users-1", "users-2")
    assert r.json() == {"id": "2", "name": "Grace Hopper", "email": "grace@example.com"}
    assert [req.path for req in servers[r.headers["x-served-by"]].requests] == ["/users/2"]
    r = await gw.client.get("/api/canary/users/9")  # a 404 of the primary stays a 404
    assert r.status == 404 and "x-fallback" not in r.headers


async def test_mirrored_route_copies_to_the_shadow_which_lists_them(upstream_factory, gateway_factory) -> None:
    gw, servers = await _demo_gateway(upstream_factory, gateway_factory, ["mirrored"])
    shadow = servers["users-shadow"]
    for user, rid in (("1", "demo-mirror-1"), ("3", "demo-mirror-2")):
        r = await gw.client.get(f"/api/mirrored/users/{user}?fields=all", headers={"x-request-id": rid})
        assert r.status == 200 and r.headers["x-served-by"] in ("users-1", "users-2")  # never the shadow
    received: list[dict[str, Any]] = []
    with trio.fail_after(5):
        while len(received) < 2:  # the copies are fire-and-forget: they may land after the answers
            received = (await gw.client.http.fetch("GET", f"{shadow.url}/_received")).json()
            await trio.sleep(0.01)
    assert received == [  # newest first, as the primary received them (prefix stripped, query kept)
        {"method": "GET", "path": "/users/3", "query": "fields=all", "x-mirrored-by": "triogate",
         "x-request-id": "demo-mirror-2"},
        {"method": "GET", "path": "/users/1", "query": "fields=all", "x-mirrored-by": "triogate",
         "x-request-id": "demo-mirror-1"},
    ]
    [plugin] = gw.gateway.services.instances(MirrorPlugin)
    with trio.fail_after(5):
        while plugin.stats.mirrored < 2:  # counted once the shadow's answer is read (and discarded)
            await trio.sleep(0.01)
    assert (plugin.stats.mirrored, plugin.stats.failed, plugin.stats.dropped) == (2, 0, 0)


async def test_fallback_answers_for_a_service_that_is_down(upstream_factory, gateway_factory) -> None:
    gw, _servers = await _demo_gateway(upstream_factory, gateway_factory, ["recommendations"])
    r = await gw.client.get("/api/recommendations/1")
    assert r.status == 200, r.content
    assert r.headers["x-fallback"] == "static"
    assert r.headers["content-type"] == "application/json" and r.headers["cache-control"] == "no-store"
    assert r.json() == {"items": [], "fallback": True}


async def test_traffic_doc_examples_parse_and_its_demo_block_serves(upstream_factory, gateway_factory) -> None:
    """docs/traffic.md: every TOML block parses; "Putting it together" runs against the demo services."""
    doc = (ROOT / "docs" / "traffic.md").read_text()
    blocks = [tomllib.loads(b) for b in re.findall(r"^```toml\n(.*?)^```", doc, re.DOTALL | re.MULTILINE)]
    assert len(blocks) == 4
    config = blocks[-1]
    servers = {instance: await upstream_factory(make_handler(service, instance), name=instance)
               for service, instance, _ in SERVICES if service.startswith("users")}
    config["upstreams"]["users"] = {"targets": [{"url": servers[i].url} for i in ("users-1", "users-2")]}
    for name in ("users-v2", "users-shadow"):
        config["upstreams"][name]["targets"] = [{"url": servers[name].url}]
    config["upstreams"]["recommendations"]["targets"] = [{"url": f"http://127.0.0.1:{free_port()}"}]
    gw = await gateway_factory(config, plugins=PLUGINS)
    assert (await gw.client.get("/api/canary/users/3", headers={"x-canary": "1"})).json()["handle"] == "alan"
    r = await gw.client.get("/api/recommendations/1")
    assert (r.status, r.headers["x-fallback"], r.content) == (200, "static", b'{"items":[],"fallback":true}')
    assert (await gw.client.get("/api/mirrored/users/2")).status == 200
    with trio.fail_after(5):
        while not servers["users-shadow"].requests:
            await trio.sleep(0.01)
    assert servers["users-shadow"].requests[0].path == "/users/2"


async def test_traffic_doc_hook_module_chooses_the_upstream(upstream_factory, gateway_factory, tmp_path: Path) -> None:
    """docs/traffic.md's hand-written ctx.use_upstream example, loaded as a local hook module."""
    doc = (ROOT / "docs" / "traffic.md").read_text()
    [code] = re.findall(r"^```python\n(.*?)^```", doc, re.DOTALL | re.MULTILINE)
    (tmp_path / "beta_hooks.py").write_text(code)
    v1 = await upstream_factory(make_handler("users", "users-1"), name="users-1")
    v2 = await upstream_factory(make_handler("users-v2", "users-v2"), name="users-v2")
    gw = await gateway_factory({
        "gateway": {"hooks": [str(tmp_path / "beta_hooks.py")]},
        "upstreams": {"orders": {"targets": [{"url": v1.url}]}, "orders-v2": {"targets": [{"url": v2.url}]}},
        "routes": {"orders": {"paths": ["/users"], "upstream": "orders"},
                   "other": {"paths": ["/other"], "upstream": "orders", "rewrite": "/users"}},
    })
    assert (await gw.client.get("/users/1")).headers["x-served-by"] == "users-1"
    assert (await gw.client.get("/users/1", headers={"x-beta": "1"})).headers["x-served-by"] == "users-v2"
    assert (await gw.client.get("/other/1", headers={"x-beta": "1"})).headers["x-served-by"] == "users-1"


async def test_discovered_route_resolves_localhost_and_sends_the_name_as_host(upstream_factory, gateway_factory) -> None:
    """The README's service-discovery example: gateway.toml's users-dns upstream (the system
    resolver's addresses of "localhost") behind /api/discovered/users, users-1 on a free port."""
    raw = tomllib.loads((ROOT / "gateway.toml").read_text())
    discovery = raw["upstreams"]["users-dns"]["discovery"]
    assert (discovery["type"], discovery["name"], discovery["port"]) == ("a", "localhost", 9101)
    assert "resolvers" not in discovery and "resolvers" not in raw["gateway"]  # the system resolver
    seen_hosts: list[str | None] = []
    users = make_handler("users", "users-1")

    async def recording(req: Any) -> Any:
        seen_hosts.append(req.headers.get("host"))
        return await users(req)

    server = await upstream_factory(recording, name="users-1")
    discovery["port"] = server.port
    config = {"upstreams": {"users-dns": raw["upstreams"]["users-dns"]}, "routes": {"discovered": raw["routes"]["discovered"]}}
    gw = await gateway_factory(config, plugins=PLUGINS)
    r = await gw.client.get("/api/discovered/users/1")
    assert r.status == 200, r.content
    assert r.headers["x-served-by"] == "users-1"
    assert r.json() == {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com"}
    assert [req.path for req in server.requests] == ["/users/1"]
    assert seen_hosts == [f"localhost:{server.port}"]
    status = gw.gateway.upstreams["users-dns"].status()
    assert status["discovery"] == {"type": "a", "name": "localhost"}
    assert [t["url"] for t in status["targets"]] == [f"http://127.0.0.1:{server.port}"]


def test_readme_shows_the_discovery_and_traffic_metrics_examples() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "curl -s -D - localhost:8000/api/discovered/users/1" in readme
    for metric in ("triogate_traffic_split_requests_total", "triogate_mirror_requests_total",
                   "triogate_fallbacks_total"):
        assert metric in readme
    # the README's access-log line matches what the fallback plugin logs now
    assert '"fallback_from":{"upstream":"users-v2","status":502,"reason":"error"}' in readme
