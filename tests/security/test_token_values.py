"""Class 10: validly signed tokens (or "active" introspection answers) with absurd time values.

A token whose ``exp``, ``nbf`` or ``iat`` is no real date (10**400 overflows float arithmetic,
1e300 or 10**20 is past any datetime, a negative value is before 1970) must be answered like any
invalid token: 401 with the RFC 6750 ``invalid_token`` challenge, as problem+json with a request
id, and nothing reaches the upstream. It used to crash the jwt plugin (500).
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from triogate.testing import IdentityProvider, raw_request

from .conftest import route_to

SECRET = "an-hs256-secret-of-at-least-32-bytes!"
ABSURD = [10**20, 10**400, -10**400, 1e300, -1, 253402300800]
INVALID_TOKEN = b'www-authenticate: Bearer realm="triogate", error="invalid_token"'


def _request(token: str) -> bytes:
    return (f"GET /orders HTTP/1.1\r\nhost: api.example\r\nauthorization: Bearer {token}\r\n"
            "connection: close\r\n\r\n").encode()


def assert_rejected_as_invalid_token(raw: bytes) -> None:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), raw[:400]
    lower = head.lower()
    assert INVALID_TOKEN.lower() in lower, head
    assert b"content-type: application/problem+json" in lower, head
    if b"transfer-encoding: chunked" in lower:  # the h2 listener may chunk; the JSON is one chunk
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    problem = json.loads(body)
    assert problem["status"] == 401 and problem["request_id"]


@pytest.mark.parametrize("max_lifetime", [0, 3600])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_jwt_with_absurd_time_claim_is_401(front, secure_gateway, raw_upstream, claim: str,
                                                 max_lifetime: int) -> None:
    up = await raw_upstream()
    config = route_to(up, plugins={"jwt": {"secret": SECRET, "max_lifetime": max_lifetime}})
    gw = await secure_gateway(config, autoload=True)
    now = int(time.time())
    good = jwt.encode({"sub": "alice", "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")
    for value in ABSURD:
        token = jwt.encode({"sub": "mallory", "iat": now, "exp": now + 600, claim: value}, SECRET, algorithm="HS256")
        assert_rejected_as_invalid_token(await raw_request(gw.port, _request(token), timeout=5))
        if claim == "exp":  # lifetime then measured from now (exp - time.time())
            token = jwt.encode({"sub": "mallory", "exp": value}, SECRET, algorithm="HS256")
            assert_rejected_as_invalid_token(await raw_request(gw.port, _request(token), timeout=5))
    assert up.heads == []
    assert (await raw_request(gw.port, _request(good), timeout=5)).startswith(b"HTTP/1.1 200 ")
    assert len(up.heads) == 1


async def test_introspection_with_absurd_exp_is_401(front, secure_gateway, raw_upstream,
                                                    identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    up = await raw_upstream()
    settings = {"introspection_url": idp.introspection_url, "client_id": idp.client_id,
                "client_secret": idp.client_secret}
    gw = await secure_gateway(route_to(up, plugins={"oauth2-introspection": settings}), autoload=True)
    for name in ("exp", "nbf", "iat"):
        for value in ABSURD:
            token = idp.issue_opaque(**{name: value})
            assert_rejected_as_invalid_token(await raw_request(gw.port, _request(token), timeout=5))
    assert up.heads == []
    assert (await raw_request(gw.port, _request(idp.issue_opaque()), timeout=5)).startswith(b"HTTP/1.1 200 ")
    assert len(up.heads) == 1
