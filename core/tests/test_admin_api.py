"""The admin API: a separate loopback listener, bearer token, built-in endpoints, plugin routes, probes."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import trio
import triogate
from triogate.admin import check_admin
from triogate.config import AdminConfig, ConfigError, loads_config
from triogate.plugins import PluginRegistry
from triogate.upstream import HTTPClient

TOKEN = "s3cret-admin-token-0123"


def config(upstream_url: str, **admin: object) -> dict:
    return {
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN, **admin},
        "upstreams": {"users": {"targets": [{"url": upstream_url}]}},
        "routes": {"users": {"paths": ["/api/users"], "upstream": "users", "strip_prefix": "/api"}},
    }


async def admin_get(gw, path: str, token: str | None = TOKEN, method: str = "GET", headers=None):
    client = HTTPClient(read_timeout=10.0)
    hdrs = list(headers or [])
    if token is not None:
        hdrs.append(("authorization", f"Bearer {token}"))
    try:
        return await client.fetch(method, gw.gateway.admin.url + path, headers=hdrs, timeout=10.0)
    finally:
        await client.aclose()


class Purger(triogate.Plugin):
    priority = 100
    purged: ClassVar[list[str]] = []

    @triogate.hookimpl
    def admin_routes(self, gateway):
        async def purge(request, route):
            Purger.purged.append(route)
            return {"purged": route}

        async def stats(request):
            return triogate.Response.text("ok\n")

        return [triogate.AdminRoute("POST", "/cache/{route}/purge", purge, "purge one route"),
                triogate.AdminRoute("get", "/cache/stats", stats)]


async def test_every_endpoint_requires_the_token(gateway_factory, upstream):
    gw = await gateway_factory(config(upstream.url))
    for path in ("/", "/status", "/routes", "/upstreams", "/plugins", "/nope"):
        r = await admin_get(gw, path, token=None)
        assert r.status == 401, path
        assert r.headers.get("www-authenticate") == 'Bearer realm="triogate-admin"'
        assert r.headers.get("content-type") == "application/problem+json"
        assert r.json()["request_id"]
        r = await admin_get(gw, path, token="wrong-token-wrong-token")
        assert r.status == 401
        assert 'error="invalid_token"' in r.headers.get("www-authenticate")
    r = await admin_get(gw, "/status", token=None, headers=[("authorization", f"Basic {TOKEN}")])
    assert r.status == 401
    r = await admin_get(gw, "/reload", token=None, method="POST")
    assert r.status == 401


async def test_probes_need_no_token(gateway_factory, upstream):
    gw = await gateway_factory(config(upstream.url))
    r = await admin_get(gw, "/livez", token=None)
    assert (r.status, r.json()) == (200, {"status": "ok"})
    r = await admin_get(gw, "/readyz", token=None)
    assert r.status == 200 and r.json()["status"] == "ready"
    gw.gateway.draining = True  # what shutdown sets before draining
    r = await admin_get(gw, "/readyz", token=None)
    assert (r.status, r.json()["status"]) == (503, "draining")
    gw.gateway.draining = False


async def test_status(gateway_factory, upstream):
    import os

    gw = await gateway_factory(config(upstream.url))
    r = await admin_get(gw, "/status")
    assert r.status == 200
    assert r.headers.get("cache-control") == "no-store"
    s = r.json()
    assert s["version"] == triogate.__version__
    assert s["pid"] == os.getpid()
    assert s["workers"] == 1 and s["worker"] == 0
    assert s["config_version"] == 1
    assert s["uptime_seconds"] >= 0
    assert s["reloads"] == {"ok": 0, "failed": 0}
    assert s["draining"] is False
    assert s["open_connections"] == 0


async def test_routes_upstreams_plugins(gateway_factory, upstream):
    gw = await gateway_factory({**config(upstream.url), "plugins": {"purger": {}}}, plugins={"purger": Purger})
    r = await admin_get(gw, "/routes")
    assert r.status == 200
    (row,) = r.json()
    assert row["route"] == "users" and row["upstream"] == "users" and row["path"] == "/api/users"
    assert row["plugins"] == ["purger"]

    assert (await gw.client.get("/api/users/1")).status == 200
    r = await admin_get(gw, "/upstreams")
    (up,) = r.json()
    assert up["name"] == "users"
    (target,) = up["targets"]
    assert target["url"] == upstream.url
    assert target["healthy"] is True and target["circuit"] == "closed"

    r = await admin_get(gw, "/plugins")
    body = r.json()
    assert [p["name"] for p in body["installed"]] == ["purger"]
    assert body["configured"] == [{"name": "purger", "route": None, "class": f"{__name__}.Purger"}]
    assert {(x["method"], x["path"]) for x in body["admin_routes"]} == {
        ("POST", "/cache/{route}/purge"), ("GET", "/cache/stats")}


async def test_plugin_admin_routes(gateway_factory, upstream):
    Purger.purged.clear()
    gw = await gateway_factory({**config(upstream.url), "plugins": {"purger": {}}}, plugins={"purger": Purger})
    r = await admin_get(gw, "/cache/users/purge", method="POST")
    assert (r.status, r.json()) == (200, {"purged": "users"})
    assert Purger.purged == ["users"]
    r = await admin_get(gw, "/cache/stats")
    assert (r.status, r.content) == (200, b"ok\n")
    r = await admin_get(gw, "/cache/users/purge")  # GET on a POST route
    assert r.status == 405 and r.headers.get("allow") == "POST"
    r = await admin_get(gw, "/status", method="DELETE")
    assert r.status == 405 and r.headers.get("allow") == "GET"
    r = await admin_get(gw, "/cache/users/purge", token=None, method="POST")
    assert r.status == 401
    assert Purger.purged == ["users"]
    r = await admin_get(gw, "/nope")
    assert r.status == 404 and r.headers.get("content-type") == "application/problem+json"


async def test_index_lists_every_endpoint(gateway_factory, upstream):
    gw = await gateway_factory({**config(upstream.url), "plugins": {"purger": {}}}, plugins={"purger": Purger})
    r = await admin_get(gw, "/")
    assert r.status == 200 and r.headers.get("content-type").startswith("application/json")
    body = r.json()
    assert body["service"] == "triogate admin API" and body["version"] == triogate.__version__
    listed = {(e["method"], e["path"]): e for e in body["endpoints"]}
    assert set(listed) == {
        ("GET", "/"), ("GET", "/livez"), ("GET", "/readyz"), ("GET", "/status"), ("GET", "/routes"),
        ("GET", "/upstreams"), ("GET", "/plugins"), ("POST", "/reload"), ("GET", "/stats"), ("GET", "/ui/"),
        ("POST", "/cache/{route}/purge"), ("GET", "/cache/stats")}
    assert listed["GET", "/livez"]["token"] is False and listed["GET", "/status"]["token"] is True
    assert listed["GET", "/ui/"]["token"] is False and listed["GET", "/stats"]["token"] is True
    assert listed["POST", "/cache/{route}/purge"] == {"method": "POST", "path": "/cache/{route}/purge", "token": True,
                                                     "description": "purge one route", "plugin": "purger@*"}
    assert all(e["description"] for e in listed.values() if "plugin" not in e)
    for method, path in listed:  # everything listed with GET is served
        if method == "GET":
            assert (await admin_get(gw, path)).status == 200, path
    assert (await admin_get(gw, "/", method="POST")).status == 405


async def test_plugin_routes_follow_reloads(gateway_factory, upstream):
    gw = await gateway_factory({**config(upstream.url), "plugins": {"purger": {}}}, plugins={"purger": Purger})
    assert (await admin_get(gw, "/cache/stats")).status == 200
    assert await gw.reload(config(upstream.url)) == []
    assert (await admin_get(gw, "/cache/stats")).status == 404


async def test_a_failing_admin_handler_is_a_500(gateway_factory, upstream):
    class Broken(triogate.Plugin):
        @triogate.hookimpl
        def admin_routes(self, gateway):
            async def boom(request):
                raise RuntimeError("kaput")

            return [triogate.AdminRoute("GET", "/boom", boom)]

    gw = await gateway_factory({**config(upstream.url), "plugins": {"broken": {}}}, plugins={"broken": Broken})
    r = await admin_get(gw, "/boom")
    assert r.status == 500 and r.json()["detail"] == "admin handler failed"
    assert (await admin_get(gw, "/status")).status == 200


async def test_reload_via_api(nursery, upstream, tmp_path: Path):
    path = tmp_path / "gateway.toml"
    good = f"""
[gateway]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"
[upstreams.users]
targets = [{{ url = "{upstream.url}" }}]
[routes.users]
paths = ["/api/users"]
upstream = "users"
"""
    path.write_text(good)
    gateway = triogate.Gateway(triogate.load_config(path), config_path=path,
                               registry=PluginRegistry(autoload=False))
    stop = trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        await triogate.serve(gateway, shutdown_trigger=stop.wait, task_status=task_status)

    await nursery.start(run)

    class GW:  # what admin_get needs
        pass

    gw = GW()
    gw.gateway = gateway
    try:
        # a bad file: every error comes back, the running config keeps serving
        path.write_text(good.replace('upstream = "users"', 'upstream = "nope"') + "\n[routes.x]\npaths = [\"x\"]\n")
        r = await admin_get(gw, "/reload", method="POST")
        assert r.status == 422
        assert r.headers.get("content-type") == "application/problem+json"
        errors = r.json()["errors"]
        assert any("routes.users.upstream" in e and "nope" in e for e in errors), errors
        assert any("routes.x.paths[0]" in e for e in errors), errors
        assert [w["ok"] for w in r.json()["workers"]] == [False]
        assert gateway.version == 1
        status = (await admin_get(gw, "/status")).json()
        assert status["reloads"] == {"ok": 0, "failed": 1}

        path.write_text(good.replace('paths = ["/api/users"]', 'paths = ["/v2/users"]'))
        r = await admin_get(gw, "/reload", method="POST")
        body = r.json()
        (worker,) = body.pop("workers")  # every worker's outcome (one here)
        assert (r.status, body) == (200, {"status": "reloaded", "config_version": 2})
        assert (worker["worker"], worker["ok"], worker["errors"], worker["config_version"]) == (0, True, [], 2)
        assert [row["path"] for row in (await admin_get(gw, "/routes")).json()] == ["/v2/users"]
    finally:
        stop.set()


def test_admin_needs_a_token_and_loopback():
    assert check_admin(AdminConfig()) == []
    errs = check_admin(AdminConfig(listen="127.0.0.1:8001"))
    assert errs == ["admin.token: a token of at least 16 characters is required when admin.listen is set"]
    assert check_admin(AdminConfig(listen="127.0.0.1:8001", token="short"))
    assert check_admin(AdminConfig(listen="127.0.0.1:8001", token=TOKEN)) == []
    assert check_admin(AdminConfig(listen="[::1]:8001", token=TOKEN)) == []
    assert check_admin(AdminConfig(listen="localhost:8001", token=TOKEN)) == []
    for host in ("0.0.0.0", "10.1.2.3", "[::]", "admin.example"):
        (err,) = check_admin(AdminConfig(listen=f"{host}:8001", token=TOKEN))
        assert "not a loopback address" in err and "allow_remote" in err
        assert check_admin(AdminConfig(listen=f"{host}:8001", token=TOKEN, allow_remote=True)) == []


def test_config_check_reports_admin_errors():
    with pytest.raises(ConfigError) as exc:
        loads_config('[admin]\nlisten = "0.0.0.0:8001"\n')
    text = "\n".join(exc.value.errors)
    assert "admin.token" in text and "admin.listen" in text
    cfg = loads_config(f'[admin]\nlisten = "0.0.0.0:8001"\ntoken = "{TOKEN}"\nallow_remote = true\n')
    assert cfg.admin.allow_remote is True


async def test_no_admin_listener_without_listen(gateway_factory, upstream):
    cfg = config(upstream.url)
    del cfg["admin"]
    gw = await gateway_factory(cfg)
    assert gw.gateway.admin is None
    assert gw.gateway.runtime.open_connections == 0
