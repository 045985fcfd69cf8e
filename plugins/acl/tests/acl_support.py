"""Shared setup: a real gateway with acl on /api behind a small test auth plugin (principal from headers)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import triogate
from triogate.testing import RunningGateway, UpstreamServer

from triogate_acl import AclPlugin


class HeaderAuth(triogate.Plugin):
    """Test-only: the principal is whatever the x-test-principal header (JSON) says."""

    priority = 1200

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        raw = ctx.request.headers.get("x-test-principal")
        if raw is None:
            return
        data = json.loads(raw)
        ctx.principal = triogate.Principal(consumer=data.get("consumer"), groups=data.get("groups", []),
                                           scopes=data.get("scopes", []), claims=data.get("claims", {}),
                                           anonymous=data.get("anonymous", False), method="test")


def who(**data: Any) -> dict[str, str]:
    return {"x-test-principal": json.dumps(data)}


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer):
    async def start(**settings: Any) -> RunningGateway:
        return await gateway_factory({
            "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
            "routes": {"api": {"paths": ["/api"], "upstream": "echo",
                               "plugins": {"acl": settings, "header-auth": {}}}},
        }, plugins={"acl": AclPlugin, "header-auth": HeaderAuth})

    return start
