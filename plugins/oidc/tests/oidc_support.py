"""Shared setup: a real gateway with the oidc plugin on / in front of a real echo upstream, a real
identity provider, and a cookie-keeping browser that follows redirects one hop at a time."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import triogate
from triogate.testing import PAGE_HEADERS, Browser, IdentityProvider, RunningGateway, UpstreamServer
from triogate_oidc import OidcPlugin

KEY = secrets.token_urlsafe(32)
OLD_KEY = secrets.token_urlsafe(32)
PAGE = PAGE_HEADERS


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def settings_for(idp: IdentityProvider, **settings: Any) -> dict[str, Any]:
    return {"issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret,
            "cookie_keys": [KEY], "cookie_secure": False, **settings}


def config(upstream: UpstreamServer, idp: IdentityProvider, consumers: dict[str, Any] | None = None,
           extra: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    return {
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"app": {"paths": ["/"], "upstream": "echo",
                           "plugins": {"oidc": settings_for(idp, **settings), **(extra or {})}}},
        "consumers": consumers or {},
    }


@pytest.fixture
async def browser():
    b = Browser()
    yield b
    await b.aclose()


@pytest.fixture
def idp(identity_provider: IdentityProvider) -> IdentityProvider:
    identity_provider.add_key("RS256")
    return identity_provider


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer, idp: IdentityProvider):
    async def start(consumers: dict[str, Any] | None = None, **settings: Any) -> RunningGateway:
        return await gateway_factory(config(upstream, idp, consumers, **settings), plugins={"oidc": OidcPlugin})

    return start


async def login(browser: Browser, gw: RunningGateway, path: str = "/app/page") -> list[triogate.Fetched]:
    """The whole flow: page → provider → callback → page; the last answer is the upstream's."""
    seen = await browser.visit(gw.url + path)
    assert [r.status for r in seen] == [302, 302, 302, 200], [(r.status, r.content[:200]) for r in seen]
    return seen


def upstream_saw(resp: triogate.Fetched) -> dict[str, Any]:
    return resp.json()
