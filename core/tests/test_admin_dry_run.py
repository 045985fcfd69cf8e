"""``POST /reload?dry_run=1``: the admin API validates the file a reload would read and answers what
would change, secrets masked, applying nothing."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio
import triogate
from triogate.plugins import PluginRegistry
from triogate.upstream import HTTPClient

TOKEN = "dry-run-admin-token-0123"
OLD_SECRET = "old-signing-secret-0123456789"
NEW_SECRET = "new-signing-secret-0123456789"


@attrs.define(frozen=True)
class SignConfig:
    secret: str = triogate.setting(description="HMAC key", secret=True)
    header: str = triogate.setting("x-signature", description="header")


class Sign(triogate.Plugin):
    priority = 1000
    Config = SignConfig


def config_text(upstream_url: str, path: str, secret: str) -> str:
    return f"""
[gateway]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"
[upstreams.users]
targets = [{{ url = "{upstream_url}" }}]
[routes.users]
paths = ["{path}"]
upstream = "users"
[routes.users.plugins.sign]
secret = "{secret}"
"""


async def post(gateway: triogate.Gateway, target: str, token: str | None = TOKEN):
    client = HTTPClient(read_timeout=10.0)
    headers = [("authorization", f"Bearer {token}")] if token else []
    try:
        return await client.fetch("POST", gateway.admin.url + target, headers=headers, timeout=10.0)
    finally:
        await client.aclose()


async def test_dry_run_answers_the_diff_and_applies_nothing(nursery, upstream, tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(config_text(upstream.url, "/a", OLD_SECRET))
    registry = PluginRegistry(autoload=False)
    registry.register("sign", Sign)
    gateway = triogate.Gateway(triogate.load_config(path, registry=registry), config_path=path, registry=registry)
    stop = trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        await triogate.serve(gateway, shutdown_trigger=stop.wait, task_status=task_status)

    await nursery.start(run)
    try:
        r = await post(gateway, "/reload?dry_run=1")
        assert r.status == 200, r.content
        assert r.json() == {"valid": True, "config_source": str(path.resolve()), "config_version": 1,
                            "changes": [], "text": "no changes"}

        path.write_text(config_text(upstream.url, "/b", NEW_SECRET))
        r = await post(gateway, "/reload?dry_run=1")
        assert r.status == 200, r.content
        body = r.json()
        assert body["valid"] is True
        assert body["text"].splitlines()[0] == '~ route "users": paths: ["/a"] → ["/b"]'
        assert body["text"].splitlines()[1].startswith('~ plugin "sign" on route "users": secret changed: <secret ')
        assert [(c["op"], c["kind"], c.get("field"), c.get("secret", False)) for c in body["changes"]] == [
            ("~", "route", "paths", False), ("~", "plugin", "secret", True)]
        raw = r.content.decode()
        assert OLD_SECRET not in raw and NEW_SECRET not in raw
        # nothing applied: same version, the old route still serves
        assert gateway.version == 1
        assert [row["path"] for row in gateway.pipeline.router.table()] == ["/a"]

        # ?dry_run=0 is a real reload
        r = await post(gateway, "/reload?dry_run=0")
        assert (r.status, r.json()["status"]) == (200, "reloaded")
        assert gateway.version == 2
        r = await post(gateway, "/reload?dry_run")
        assert (r.status, r.json()["text"]) == (200, "no changes")

        # an invalid file: 422 with every error, nothing applied
        path.write_text(config_text(upstream.url, "/c", NEW_SECRET).replace('upstream = "users"', 'upstream = "nope"'))
        r = await post(gateway, "/reload?dry_run=1")
        assert r.status == 422
        assert r.headers.get("content-type") == "application/problem+json"
        assert r.json()["valid"] is False
        assert any("routes.users.upstream" in e and "nope" in e for e in r.json()["errors"]), r.json()
        assert gateway.version == 2

        # the token is required, as for a reload
        r = await post(gateway, "/reload?dry_run=1", token=None)
        assert r.status == 401
    finally:
        stop.set()
