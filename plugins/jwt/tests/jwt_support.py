"""Shared setup: a real gateway with the jwt plugin on /api in front of a real echo upstream."""

from __future__ import annotations

from typing import Any

import pytest
from triogate.testing import IdentityProvider, RunningGateway, UpstreamServer
from triogate_jwt import JwtPlugin

SECRET = "s" * 40


def config(upstream: UpstreamServer, consumers: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "strip_prefix": "/api",
                           "plugins": {"jwt": settings}}},
        "consumers": consumers or {},
    }


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer):
    async def start(consumers: dict[str, Any] | None = None, **settings: Any) -> RunningGateway:
        return await gateway_factory(config(upstream, consumers, **settings), plugins={"jwt": JwtPlugin})

    return start


@pytest.fixture
def idp_settings(identity_provider: IdentityProvider) -> dict[str, Any]:
    return {"jwks_uri": identity_provider.jwks_uri, "issuer": identity_provider.issuer}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_invalid_token(r) -> None:
    assert r.status == 401, r.content
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers.get_all("www-authenticate") == ['Bearer realm="triogate", error="invalid_token"']
    assert "request_id" in r.json()
