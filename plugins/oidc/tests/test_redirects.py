"""After login the browser returns to a path on this origin only: no open redirect."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import triogate
from oidc_support import Browser
from triogate.testing import IdentityProvider
from triogate_oidc.navigation import is_navigation, safe_return

EVIL = ["//evil.example", "//evil.example/x", "/\\evil.example", "\\\\evil.example", "https://evil.example/",
        "http:evil.example", "javascript:alert(1)", "evil.example", "/%2F%2Fevil.example", "/%5cevil.example",
        "/\t/evil.example", " //evil.example", "", "data:text/html,x"]


@pytest.mark.parametrize("target", EVIL)
def test_unsafe_targets(target: str) -> None:
    assert safe_return(target) == "/"


@pytest.mark.parametrize("target", ["/", "/app", "/app/x?y=1&z=%2F", "/a/b#frag", "/@evil.example"])
def test_safe_targets(target: str) -> None:
    assert safe_return(target) == target


@pytest.mark.parametrize("target", EVIL[:8])
async def test_login_rd_is_same_origin(start, idp: IdentityProvider, browser: Browser, target: str) -> None:
    gw = await start()
    seen = await browser.visit(f"{gw.url}/oauth2/login?rd={quote(target, safe='')}", hops=3)
    assert [r.status for r in seen] == [302, 302, 302]
    assert seen[-1].headers["location"] == "/"


async def test_login_rd_kept_when_safe(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    seen = await browser.visit(f"{gw.url}/oauth2/login?rd={quote('/app/x?y=1', safe='')}", hops=3)
    assert seen[-1].headers["location"] == "/app/x?y=1"


async def test_page_path_that_looks_like_another_host(start, idp: IdentityProvider, browser: Browser) -> None:
    gw = await start()
    seen = await browser.visit(f"{gw.url}//evil.example/x", hops=3)
    assert seen[0].status == 302
    assert seen[-1].status == 302 and not seen[-1].headers["location"].startswith("//")


def _req(method: str = "GET", **headers: str) -> triogate.Request:
    return triogate.Request(method, "/", headers=[(k.replace("_", "-"), v) for k, v in headers.items()])


def test_is_navigation() -> None:
    assert is_navigation(_req(accept="text/html"))
    assert is_navigation(_req(accept="text/html", sec_fetch_mode="navigate"))
    assert not is_navigation(_req(accept="text/html", sec_fetch_mode="cors"))
    assert not is_navigation(_req(accept="text/html", x_requested_with="XMLHttpRequest"))
    assert not is_navigation(_req(accept="application/json"))
    assert not is_navigation(_req())
    assert not is_navigation(_req("POST", accept="text/html"))
