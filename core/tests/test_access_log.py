"""Access log lines: consumer, route, plugin decisions, extras; json and console formats;
every kind of secret redacted (Authorization, Proxy-Authorization, cookies, API-key headers,
tokens in query strings, secret-looking log_extra keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import triogate
from triogate.accesslog import REDACTED, redact_header, redact_query

SECRETS = {
    "bearer": "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWJlYXJlcg.sig-bearer-9f8e7d",
    "basic": "YWxpY2U6cGFzc3dvcmQxMjM=",
    "proxy": "cHJveHl1c2VyOnByb3h5cGFzcw==",
    "cookie": "sess-cookie-value-5e6f7a",
    "cookie2": "csrf-cookie-value-8b9c0d",
    "apikey_header": "hdr-api-key-1a2b3c4d",
    "auth_token_header": "hdr-auth-token-2b3c4d5e",
    "query_token": "qs-access-token-3c4d5e6f",
    "query_apikey": "qs-api-key-4d5e6f7a",
    "query_encoded": "qs-encoded-key-5e6f7a8b",
    "query_password": "qs-password-6f7a8b9c",
    "query_sig": "qs-signature-7a8b9c0d",
    "extra_token": "extra-token-8b9c0d1e",
    "extra_nested": "extra-nested-secret-9c0d1e2f",
}


class Auth(triogate.Plugin):
    """x-user -> principal; x-block -> 403 with a reason."""

    priority = 1000

    @triogate.hookimpl
    async def auth(self, ctx):
        ctx.log_extra["refresh_token"] = SECRETS["extra_token"]
        ctx.log_extra["upstream_auth"] = {"client_secret": SECRETS["extra_nested"], "client_id": "gw"}
        ctx.log_extra["trace_id"] = "0af7651916cd43dd8448eb211c80319c"
        if ctx.request.headers.get("x-block"):
            ctx.log_extra["reason"] = "ip_blocked"
            return ctx.problem(403, "blocked by policy")
        user = ctx.request.headers.get("x-user")
        if user:
            ctx.principal = triogate.Principal(consumer=user)


class Teapot(triogate.Plugin):
    priority = 800

    @triogate.hookimpl
    async def transform(self, ctx):
        return ctx.problem(418, "short and stout")


def cfg(upstream_url: str, log: Path, **gateway) -> dict:
    return {
        "gateway": {"access_log": str(log), "access_log_headers": [
            "authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token", "user-agent"],
            **gateway},
        "upstreams": {"u": {"targets": [{"url": upstream_url}]}},
        "routes": {
            "users": {"paths": ["/api/users"], "upstream": "u", "plugins": {"auth": {}}},
            "teapot": {"paths": ["/tea"], "upstream": "u", "plugins": {"teapot": {}}},
        },
    }


async def lines(log: Path, count: int) -> list[str]:
    with trio.fail_after(5):
        while True:
            text = log.read_text() if log.exists() else ""
            got = text.splitlines()
            if len(got) >= count:
                return got
            await trio.sleep(0.01)


async def send_every_secret(gw) -> None:
    q = (f"page=2&access_token={SECRETS['query_token']}&apikey={SECRETS['query_apikey']}"
         f"&api%5Fkey={SECRETS['query_encoded']}&password={SECRETS['query_password']}"
         f"&X-Amz-Signature={SECRETS['query_sig']}")
    r = await gw.client.get(f"/api/users/1?{q}", headers=[
        ("authorization", f"Bearer {SECRETS['bearer']}"),
        ("proxy-authorization", f"Basic {SECRETS['proxy']}"),
        ("cookie", f"session={SECRETS['cookie']}; csrf={SECRETS['cookie2']}"),
        ("x-api-key", SECRETS["apikey_header"]),
        ("x-auth-token", SECRETS["auth_token_header"]),
        ("user-agent", "pytest/1"),
        ("x-user", "alice"),
    ])
    assert r.status == 200
    r = await gw.client.get("/api/users/2", headers=[("authorization", f"Basic {SECRETS['basic']}")])
    assert r.status == 200


async def test_json_line_and_every_secret_redacted(gateway_factory, upstream, tmp_path):
    log = tmp_path / "access.log"
    gw = await gateway_factory(cfg(upstream.url, log), plugins={"auth": Auth, "teapot": Teapot})
    await send_every_secret(gw)
    text = "\n".join(await lines(log, 2))
    for kind, secret in SECRETS.items():
        assert secret not in text, f"{kind} secret leaked into the access log"
    first, second = (json.loads(x) for x in text.splitlines())

    assert first["route"] == "users" and first["consumer"] == "alice" and first["status"] == 200
    assert first["upstream"] == "u" and first["target"] == upstream.url
    assert first["path"] == "/api/users/1"
    assert first["query"] == ("page=2&access_token=REDACTED&apikey=REDACTED&api%5Fkey=REDACTED"
                              "&password=REDACTED&X-Amz-Signature=REDACTED")
    assert first["headers"] == {
        "authorization": "Bearer REDACTED",
        "proxy-authorization": "Basic REDACTED",
        "cookie": "session=REDACTED; csrf=REDACTED",
        "x-api-key": REDACTED,
        "x-auth-token": REDACTED,
        "user-agent": "pytest/1",
    }
    assert first["refresh_token"] == REDACTED
    assert first["upstream_auth"] == {"client_secret": REDACTED, "client_id": "gw"}
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"   # trace ids are not secrets
    assert second["headers"] == {"authorization": "Basic REDACTED"}
    assert "consumer" not in second


async def test_plugin_decisions_are_logged(gateway_factory, upstream, tmp_path):
    log = tmp_path / "access.log"
    gw = await gateway_factory(cfg(upstream.url, log), plugins={"auth": Auth, "teapot": Teapot})
    assert (await gw.client.get("/api/users", headers={"x-block": "1"})).status == 403
    assert (await gw.client.get("/tea")).status == 418
    blocked, teapot = (json.loads(x) for x in await lines(log, 2))
    assert blocked["short_circuit"] == {"plugin": "auth", "phase": "auth", "status": 403, "reason": "ip_blocked"}
    assert blocked["route"] == "users"
    # without a reason in log_extra, the problem detail says why
    assert teapot["short_circuit"] == {"plugin": "teapot", "phase": "transform", "status": 418,
                                       "reason": "short and stout"}
    assert "upstream" not in teapot


async def test_console_format(gateway_factory, upstream, tmp_path):
    log = tmp_path / "access.log"
    gw = await gateway_factory(cfg(upstream.url, log, access_log_format="console"),
                               plugins={"auth": Auth, "teapot": Teapot})
    await send_every_secret(gw)
    assert (await gw.client.get("/api/users", headers={"x-block": "1"})).status == 403
    got = await lines(log, 3)
    text = "\n".join(got)
    for kind, secret in SECRETS.items():
        assert secret not in text, f"{kind} secret leaked into the console access log"
    first, _, blocked = got
    assert '"GET /api/users/1?page=2&access_token=REDACTED' in first
    assert " 200 " in first and " route=users " in first and " consumer=alice " in first
    assert f" upstream=u@{upstream.url} " in first
    assert ' authorization="Bearer REDACTED" ' in first
    assert ' cookie="session=REDACTED; csrf=REDACTED" ' in first
    assert ' trace_id="0af7651916cd43dd8448eb211c80319c"' in first
    assert not first.startswith("{")
    assert " 403 " in blocked and ' short_circuit=auth/auth reason="ip_blocked"' in blocked
    assert blocked.count("ip_blocked") == 1


async def test_format_follows_reload(gateway_factory, upstream, tmp_path):
    log = tmp_path / "access.log"
    gw = await gateway_factory(cfg(upstream.url, log), plugins={"auth": Auth, "teapot": Teapot})
    await gw.client.get("/api/users/1")
    await lines(log, 1)
    assert await gw.reload(cfg(upstream.url, log, access_log_format="console")) == []
    await gw.client.get("/api/users/1")
    first, second = await lines(log, 2)
    assert first.startswith("{") and not second.startswith("{")


@pytest.mark.parametrize("query, expected", [
    ("token=abc", "token=REDACTED"),
    ("id_token=a&refresh_token=b", "id_token=REDACTED&refresh_token=REDACTED"),
    ("client_secret=s&client_id=c", "client_secret=REDACTED&client_id=c"),
    ("key=k&sig=s&code=c&jwt=j", "key=REDACTED&sig=REDACTED&code=REDACTED&jwt=REDACTED"),
    ("passwd=p&pwd=q&auth=a", "passwd=REDACTED&pwd=REDACTED&auth=REDACTED"),
    ("sessionid=s&x-amz-credential=c", "sessionid=REDACTED&x-amz-credential=REDACTED"),
    ("api-key=k&API_KEY=k2", "api-key=REDACTED&API_KEY=REDACTED"),
    ("access%5Ftoken=t", "access%5Ftoken=REDACTED"),
    ("page=1&sort=name&author=bob&keyword=x", "page=1&sort=name&author=bob&keyword=x"),
    ("flag&token", "flag&token"),
    ("", ""),
])
def test_redact_query(query, expected):
    assert redact_query(query) == expected


@pytest.mark.parametrize("name, value, expected", [
    ("Authorization", "Bearer abc", "Bearer REDACTED"),
    ("authorization", "Basic dXNlcjpwYXNz", "Basic REDACTED"),
    ("authorization", "opaque-token-without-scheme", REDACTED),
    ("proxy-authorization", "Digest username=x, response=y", "Digest REDACTED"),
    ("cookie", "a=1; b=2", "a=REDACTED; b=REDACTED"),
    ("x-api-key", "k", REDACTED),
    ("apikey", "k", REDACTED),
    ("x-auth-token", "t", REDACTED),
    ("x-csrf-token", "t", REDACTED),
    ("x-amz-security-token", "t", REDACTED),
    ("user-agent", "curl/8", "curl/8"),
    ("accept", "application/json", "application/json"),
])
def test_redact_header(name, value, expected):
    assert redact_header(name, value) == expected
