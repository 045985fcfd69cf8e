import pytest
from triogate import Plugin, Principal, hookimpl
from triogate_rate_limit import RateLimitPlugin


class HeaderAuth(Plugin):
    """Test auth: ``X-User: name`` (and optional ``X-Key``) becomes the principal."""

    priority = 1000

    @hookimpl
    async def auth(self, ctx):
        user = ctx.request.headers.get("x-user")
        if user:
            ctx.principal = Principal(consumer=user, credential=ctx.request.headers.get("x-key") or f"key-{user}")


@pytest.fixture
def plugins():
    return {"rate-limit": RateLimitPlugin, "header-auth": HeaderAuth}


@pytest.fixture
def route_config(upstream):
    def make(rate_limit, *, paths=("/",), auth=False, extra=None, global_plugins=None):
        plugins = {"rate-limit": rate_limit} if rate_limit is not None else {}
        if auth:
            plugins["header-auth"] = {}
        cfg = {
            "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
            "routes": {"r": {"paths": list(paths), "upstream": "u", "plugins": plugins}},
        }
        if extra:
            cfg["routes"].update(extra)
        if global_plugins:
            cfg["plugins"] = global_plugins
        return cfg

    return make
