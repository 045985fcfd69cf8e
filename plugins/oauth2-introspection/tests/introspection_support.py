"""Shared setup: a real gateway with oauth2-introspection on /api, a real IdP and a real echo upstream."""

from __future__ import annotations

from typing import Any

import pytest
from triogate.testing import IdentityProvider, RunningGateway, UpstreamServer

from triogate_oauth2_introspection import IntrospectionPlugin


def config(upstream: UpstreamServer, idp: IdentityProvider, consumers: dict | None = None, **settings: Any) -> dict:
    settings = {"introspection_url": idp.introspection_url, "client_id": idp.client_id,
                "client_secret": idp.client_secret, **settings}
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "strip_prefix": "/api",
                           "plugins": {"oauth2-introspection": settings}}},
        "consumers": consumers or {},
    }


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer, identity_provider: IdentityProvider):
    async def start(consumers: dict | None = None, **settings: Any) -> RunningGateway:
        return await gateway_factory(config(upstream, identity_provider, consumers, **settings),
                                     plugins={"oauth2-introspection": IntrospectionPlugin})

    return start


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_invalid_token(r) -> None:
    assert r.status == 401, r.content
    assert r.headers.get_all("www-authenticate") == ['Bearer realm="triogate", error="invalid_token"']
