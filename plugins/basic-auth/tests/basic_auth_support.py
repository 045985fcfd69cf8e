"""Shared setup: a real gateway with basic-auth on /api in front of a real echo upstream."""

from __future__ import annotations

import base64
from typing import Any

import argon2
import bcrypt
import pytest
from triogate.testing import RunningGateway, UpstreamServer

from triogate_basic_auth import BasicAuthPlugin

BCRYPT_HASH = bcrypt.hashpw("älice-pw".encode(), bcrypt.gensalt(rounds=4)).decode()
ARGON2_HASH = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("bob-pw")
CONSUMERS = {
    "alice": {"groups": ["staff"], "custom_id": "u-1",
              "credentials": {"basic-auth": {"username": "alice", "password_hash": BCRYPT_HASH}}},
    "bob": {"credentials": {"basic-auth": [{"username": "bob", "password_hash": ARGON2_HASH},
                                           {"username": "bob2", "password_hash": BCRYPT_HASH}]}},
    "guest": {"groups": ["public"]},
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def config(upstream: UpstreamServer, consumers: dict | None = None, **settings: Any) -> dict:
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "strip_prefix": "/api",
                           "plugins": {"basic-auth": settings}}},
        "consumers": CONSUMERS if consumers is None else consumers,
    }


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer):
    async def start(consumers: dict | None = None, **settings: Any) -> RunningGateway:
        return await gateway_factory(config(upstream, consumers, **settings), plugins={"basic-auth": BasicAuthPlugin})

    return start
