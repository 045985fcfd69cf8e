"""Shared setup: a real gateway with the oidc plugin on / in front of a real echo upstream, a real
identity provider, and a cookie-keeping browser that follows redirects one hop at a time."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import triogate
from triogate.testing import IdentityProvider, RunningGateway, UpstreamServer
from triogate_oidc import OidcPlugin

KEY = secrets.token_urlsafe(32)
OLD_KEY = secrets.token_urlsafe(32)
PAGE = {"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "sec-fetch-mode": "navigate"}


class Browser:
    """Keeps cookies (name, value, Path; Max-Age=0 deletes) and sends them where a browser would.

    One jar for every host, as browsers do for one host name on several ports (127.0.0.1).
    """

    def __init__(self) -> None:
        self.http = triogate.HTTPClient(read_timeout=10.0)
        self.cookies: dict[str, tuple[str, str, str]] = {}  # name -> (value, path, the whole Set-Cookie)

    def cookie_header(self, path: str) -> str:
        return "; ".join(f"{n}={v}" for n, (v, p, _) in self.cookies.items()
                         if path == p or path.startswith(p.rstrip("/") + "/") or p == "/")

    def store(self, resp: triogate.Fetched) -> None:
        for line in resp.headers.get_all("set-cookie"):
            first, *attrs = [part.strip() for part in line.split(";")]
            name, _, value = first.partition("=")
            a = {k.lower(): v for k, _, v in (x.partition("=") for x in attrs)}
            if a.get("max-age") == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = (value, a.get("path", "/"), line)

    async def get(self, url: str, headers: dict[str, str] | None = None) -> triogate.Fetched:
        hdrs = dict(PAGE if headers is None else headers)
        cookie = self.cookie_header(urlsplit(url).path or "/")
        if cookie:
            hdrs["cookie"] = cookie
        resp = await self.http.fetch("GET", url, headers=hdrs, timeout=10)
        self.store(resp)
        return resp

    async def visit(self, url: str, headers: dict[str, str] | None = None, hops: int = 8) -> list[triogate.Fetched]:
        """GET ``url`` and follow redirects (relative ones against the current URL) as a browser
        would, for at most ``hops`` requests; every answer, in order."""
        seen = []
        for _ in range(hops):
            resp = await self.get(url, headers)
            seen.append(resp)
            location = resp.headers.get("location")
            if resp.status not in (301, 302, 303, 307, 308) or location is None:
                break
            u = urlsplit(url)
            url = location if "://" in location else f"{u.scheme}://{u.netloc}{location}"
        return seen

    async def aclose(self) -> None:
        await self.http.aclose()


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
