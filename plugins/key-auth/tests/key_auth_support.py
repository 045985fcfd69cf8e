"""Shared setup: a real gateway with key-auth on /api in front of a real echo upstream."""

from __future__ import annotations

from typing import Any

import pytest
from triogate.testing import RunningGateway, UpstreamServer

from triogate_key_auth import KeyAuthPlugin

ALICE_KEY = "alice-secret-key"
ALICE_HASH = "sha256:d85cc5e31c65548b64632af4304e20eb0f792b7280b1cf6fd73ffa0d9c745f5b"
CONSUMERS = {
    "alice": {"groups": ["staff"], "custom_id": "u-1", "credentials": {"key-auth": {"keys": [ALICE_HASH]}}},
    "bob": {"credentials": {"key-auth": {"keys": ["bob-plain-key", "bob-second-key"]}}},
    "guest": {"groups": ["public"]},
}


def config(upstream: UpstreamServer, consumers: dict | None = None, **settings: Any) -> dict:
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "strip_prefix": "/api",
                           "plugins": {"key-auth": settings}}},
        "consumers": CONSUMERS if consumers is None else consumers,
    }


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer):
    async def start(consumers: dict | None = None, **settings: Any) -> RunningGateway:
        return await gateway_factory(config(upstream, consumers, **settings), plugins={"key-auth": KeyAuthPlugin})

    return start
