"""`triogate diff`: what a reload would change, against another file or the running gateway (through
``POST /reload?dry_run=1``), with the first-party plugins' secrets masked; exit 0 same, 1 changes, 2 trouble.

Real files, a real `triogate run` (two workers: any of them answers the dry run) and the installed
first-party plugins (jwt, key-auth, oauth2-introspection), whose secret marks are what is tested.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import trio
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port

ENV = {k: v for k, v in os.environ.items() if k != "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"}
#: the CLI has a variable the gateway lacks: a file using it is valid here and invalid there
CLI_ENV = {**ENV, "DIFF_CLI_ONLY": "/only-here"}
TOKEN = "diff-cli-admin-token-0123"
SECRETS = {
    "jwt": ("jwt-hmac-secret-old-0123456789abcdef", "jwt-hmac-secret-new-0123456789abcdef"),
    "key": ("alice-api-key-old", "alice-api-key-new"),
    "client": ("introspection-client-secret-old", "introspection-client-secret-new"),
    "consumer-jwt": ("consumer-jwt-secret-old-0123456789abc", "consumer-jwt-secret-new-0123456789abc"),
}


def config_text(version: int, *, port: int, admin_port: int, upstream: str, path: str = "/api") -> str:
    """Version 0 or 1 of a config: every secret differs between them, and so do some plain settings."""
    s = {name: pair[version] for name, pair in SECRETS.items()}
    extra_route = '[routes.extra]\npaths = ["/extra"]\nupstream = "u"\n' if version else ""
    return f"""
[gateway]
listen = ["127.0.0.1:{port}"]
access_log = "off"
[admin]
listen = "127.0.0.1:{admin_port}"
token = "{TOKEN}"
[upstreams.u]
targets = [{{ url = "{upstream}" }}]
[routes.api]
paths = ["{path}"]
upstream = "u"
[routes.api.plugins.jwt]
secret = "{s['jwt']}"
anonymous = "alice"
[routes.api.plugins.key-auth]
anonymous = "alice"
[routes.api.plugins.oauth2-introspection]
introspection_url = "http://127.0.0.1:9/introspect"
client_id = "gateway"
client_secret = "{s['client']}"
anonymous = "alice"
{extra_route}
[consumers.alice.credentials.key-auth]
keys = ["{s['key']}"]
[consumers.alice.credentials.jwt]
keys = [{{ kid = "alice-{version}", secret = "{s['consumer-jwt']}" }}]
"""


async def triogate_cli(*args: str) -> tuple[int, str, str]:
    with trio.fail_after(60):
        done = await trio.run_process([sys.executable, "-m", "triogate", *args], env=CLI_ENV,
                                      capture_stdout=True, capture_stderr=True, check=False)
    out, err = done.stdout.decode(), done.stderr.decode()
    for old, new in SECRETS.values():
        assert old not in out + err and new not in out + err, out + err
    assert TOKEN not in out + err
    return done.returncode, out, err


def check_diff_lines(out: str) -> None:
    lines = out.splitlines()
    assert '+ route "extra" (paths = ["/extra"], upstream = "u")' in lines, out
    assert any(line.startswith('~ plugin "jwt" on route "api": secret changed: <secret ') for line in lines), out
    assert any(line.startswith('~ plugin "oauth2-introspection" on route "api": client_secret changed: <secret ')
               for line in lines), out
    assert any(line.startswith('~ consumer "alice": credentials.key-auth.keys changed: <secret ') for line in lines)
    # jwt's consumer keys: the kid is shown, the secret is not
    assert '~ consumer "alice": credentials.jwt.keys[0].kid: "alice-0" → "alice-1"' in lines, out
    assert any(line.startswith('~ consumer "alice": credentials.jwt.keys[0].secret changed: <secret ')
               for line in lines), out


async def test_diff_against_a_file(tmp_path: Path) -> None:
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(config_text(0, port=free_port(), admin_port=free_port(), upstream="http://127.0.0.1:9"))
    new.write_text(config_text(1, port=free_port(), admin_port=free_port(), upstream="http://127.0.0.1:9"))
    # ports differ too: gateway.listen and admin.listen need a restart
    code, out, err = await triogate_cli("diff", "-c", str(new), "--against", str(old))
    assert (code, err) == (1, ""), out + err
    check_diff_lines(out)
    assert "~ gateway: listen[0].address: " in out and out.count("(takes effect after a restart, not a reload)") == 2, out

    code, out, err = await triogate_cli("diff", "-c", str(new), "--against", str(old), "--json")
    assert (code, err) == (1, ""), err
    data = json.loads(out)
    assert data["valid"] is True and data["against"] == str(old)
    assert {(c["op"], c["kind"], c.get("name")) for c in data["changes"]} >= {("+", "route", "extra")}
    assert all(c["text"] for c in data["changes"])

    code, out, err = await triogate_cli("diff", "-c", str(new), "--against", str(new))
    assert (code, out, err) == (0, "no changes\n", "")
    code, out, err = await triogate_cli("diff", "-c", str(new), "--against", str(new), "--json")
    assert (code, json.loads(out)["changes"]) == (0, [])

    bad = tmp_path / "bad.toml"
    bad.write_text(new.read_text().replace('paths = ["/extra"]', 'paths = ["extra"]'))
    code, out, err = await triogate_cli("diff", "-c", str(bad), "--against", str(old))
    assert (code, out) == (2, "")
    assert err.startswith("triogate: invalid configuration (1 error):\n"), err
    assert f"  {bad}: routes.extra.paths[0]: " in err, err


async def test_diff_against_the_running_gateway(tmp_path: Path, upstream: UpstreamServer) -> None:
    port, admin_port = free_port(), free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(0, port=port, admin_port=admin_port, upstream=upstream.url))
    async with GatewayProcess(cfg, env=ENV, args=["--workers", "2"]) as gw:
        code, out, err = await triogate_cli("diff", "-c", str(cfg))
        assert (code, out, err) == (0, "no changes\n", ""), out + err + gw.output()

        cfg.write_text(config_text(1, port=port, admin_port=admin_port, upstream=upstream.url))
        for _ in range(3):  # whichever worker answers, the same diff
            code, out, err = await triogate_cli("diff", "-c", str(cfg))
            assert (code, err) == (1, ""), out + err + gw.output()
            check_diff_lines(out)
            assert "gateway: listen" not in out  # same ports: no restart needed
        code, out, err = await triogate_cli("diff", "-c", str(cfg), "--json")
        assert code == 1 and json.loads(out)["against"] == "running gateway"
        client = GatewayClient(gw.url)
        try:
            with trio.fail_after(5):
                assert (await client.get("/extra")).status == 404  # a dry run applies nothing
        finally:
            await client.aclose()

        code, out, err = await triogate_cli("reload", "-c", str(cfg))
        assert code == 0, out + err
        code, out, err = await triogate_cli("diff", "-c", str(cfg))
        assert (code, out) == (0, "no changes\n"), out + err

        # invalid as the gateway reads it (its environment lacks a variable): its errors, exit 2
        cfg.write_text(config_text(1, port=port, admin_port=admin_port, upstream=upstream.url,
                                   path="${DIFF_CLI_ONLY}"))
        code, out, err = await triogate_cli("diff", "-c", str(cfg))
        assert (code, out) == (2, ""), out + err
        assert err.startswith("triogate: invalid configuration, as the running gateway reads it (1 error):\n"), err
        assert "routes.api.paths[0]: environment variable DIFF_CLI_ONLY is not set" in err, err
        cfg.write_text(config_text(1, port=port, admin_port=admin_port, upstream=upstream.url))

        # a file the gateway does not read: exit 2
        other = tmp_path / "other.toml"
        other.write_text(cfg.read_text())
        code, out, err = await triogate_cli("diff", "-c", str(other))
        assert (code, out) == (2, ""), out + err
        assert f"the running gateway reloads from {cfg.resolve()}, not {other}" in err, err
        code, out, err = await triogate_cli("diff", "-c", str(other), "--admin", f"http://127.0.0.1:{admin_port}",
                                            "--token", "wrong-token-wrong-token")
        assert code == 2 and "answered 401" in err, err

    code, out, err = await triogate_cli("diff", "-c", str(cfg))
    assert (code, out) == (2, "")
    assert f"no running gateway answers on the admin API at http://127.0.0.1:{admin_port}" in err, err


async def test_diff_without_an_admin_api_or_a_file(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[upstreams.u]\ntargets = [{ url = "http://127.0.0.1:9" }]\n[routes.r]\nupstream = "u"\n')
    code, out, err = await triogate_cli("diff", "-c", str(cfg))
    assert (code, out) == (2, "")
    assert "configures no admin API" in err and "--against" in err, err


async def test_url_passwords_and_credential_headers_in_plugin_tables(tmp_path: Path) -> None:
    """rate-limit's redis URL and aggregate's backend headers have no secret mark: the password of a
    URL and a credential-looking header are masked anyway, the host is not."""
    text = """
[upstreams.u]
targets = [{ url = "http://127.0.0.1:9" }]
[routes.r]
upstream = "u"
[routes.r.plugins.rate-limit]
limits = ["5/s"]
backend = "redis"
[routes.r.plugins.rate-limit.redis]
url = "redis://:redis-pw-OLD@10.0.0.5:6379/0"
[routes.r.plugins.aggregate.backends.a]
upstream = "u"
path = "/x"
headers = { authorization = "Bearer backend-token-OLD", x-env = "a" }
"""
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(text)
    new.write_text(text.replace("OLD", "NEW").replace('"a"', '"b"'))
    code, out, err = await triogate_cli("diff", "-c", str(new), "--against", str(old))
    assert (code, err) == (1, ""), out + err
    assert "redis-pw-" not in out and "backend-token-" not in out, out
    lines = out.splitlines()
    assert lines[0].startswith('~ plugin "rate-limit" on route "r": redis.url changed: "redis://:<secret '), out
    assert lines[0].endswith('@10.0.0.5:6379/0"'), out
    assert lines[1].startswith('~ plugin "aggregate" on route "r": backends.a.headers.authorization changed: <secret ')
    assert lines[2] == '~ plugin "aggregate" on route "r": backends.a.headers.x-env: "a" → "b"'
    assert len(lines) == 3, out
