"""Answers given before the upstream call (auth 401, a plugin's 429 or 503) are never replaced."""

from __future__ import annotations

import triogate
from triogate_key_auth import KeyAuthPlugin


class Limited(triogate.Plugin):
    """Refuses every request in transform, as a rate limit or a maintenance switch would."""

    priority = 900

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> triogate.Response | None:
        if ctx.request.headers.get("x-mode") == "raise":
            raise triogate.GatewayError("maintenance", status=503)
        return ctx.problem(429, "slow down")


async def test_auth_401_is_untouched(upstream_factory, start, backup, answering) -> None:
    primary = await upstream_factory(answering(503))
    gw = await start(primary.url, {"upstream": "backup", "statuses": [401, 502, 503, 504]},
                     plugins={"key-auth": {}}, classes={"key-auth": KeyAuthPlugin},
                     extra={"consumers": {"alice": {"credentials": {"key-auth": {"keys": ["k-alice"]}}}}})
    r = await gw.client.get("/api/x")
    assert r.status == 401 and "x-fallback" not in r.headers and "www-authenticate" in r.headers
    r = await gw.client.get("/api/x", headers={"x-api-key": "wrong"})
    assert r.status == 401 and "x-fallback" not in r.headers
    assert primary.requests == [] and backup.requests == []
    r = await gw.client.get("/api/x", headers={"x-api-key": "k-alice"})  # authenticated: the 503 falls back
    assert r.status == 200 and r.headers["x-fallback"] == "upstream:backup"
    assert "x-api-key" not in r.json()["headers"]  # the key was stripped for the fallback too


async def test_plugin_answers_before_the_call_are_untouched(upstream_factory, start, backup, spy, answering) -> None:
    primary = await upstream_factory(answering(503))
    gw = await start(primary.url, {"upstream": "backup", "statuses": [429, 503]},
                     plugins={"limited": {}}, classes={"limited": Limited})
    r = await gw.client.get("/api/x")
    assert r.status == 429 and "x-fallback" not in r.headers
    r = await gw.client.get("/api/x", headers={"x-mode": "raise"})  # a GatewayError 503 from a plugin, not upstream
    assert r.status == 503 and "x-fallback" not in r.headers
    assert primary.requests == [] and backup.requests == []
    assert all("fallback" not in s for s in spy.seen)
