"""Attacks on a running gateway over real sockets: redirects, logout, callbacks, spoofed identity."""

from __future__ import annotations

import pytest
from oidc_support import Browser
from triogate.testing import IdentityProvider

# rd values as the attacker sends them (already percent-encoded where that is the point)
ENCODED_RD = [
    "%2F%2Fevil.example",  # //evil.example after decoding
    "%2F%252F%252Fevil.example",  # /%2F%2Fevil.example after decoding
    "%2F%255Cevil.example",  # /%5Cevil.example
    "%2F%5Cevil.example",  # /\evil.example
    "%2F%09%2Fevil.example",  # a tab, dropped by browsers: //evil.example
    "%2F%0A%2Fevil.example",  # a newline, dropped by browsers
    "%2F%0D%0ASet-Cookie:%20x=1",  # header injection
    "https:evil.example",
    "%2F%E3%80%80evil.example",  # non-ASCII: must not break the response
    "%2F%E2%80%A8%2Fevil.example",
    "%2F%C2%85%2Fevil.example",
]


@pytest.mark.parametrize("rd", ENCODED_RD)
async def test_encoded_return_targets(start, idp: IdentityProvider, browser: Browser, rd: str) -> None:
    gw = await start()
    seen = await browser.visit(f"{gw.url}/oauth2/login?rd={rd}", hops=3)
    assert [r.status for r in seen] == [302, 302, 302], [(r.status, r.content[:300]) for r in seen]
    location = seen[-1].headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert location.isascii() and location.isprintable()
    assert "evil" not in location or location.startswith("/%"), location
