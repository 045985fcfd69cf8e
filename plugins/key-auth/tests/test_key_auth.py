"""Behaviour: keys from headers and the query, hashed or plain, stripping, anonymous, consumer headers."""

from __future__ import annotations

import triogate
from triogate.testing import UpstreamServer

from triogate_key_auth import KeyAuthPlugin

from key_auth_support import ALICE_KEY, config


def assert_challenged(r) -> None:
    assert r.status == 401, r.content
    assert r.headers.get_all("www-authenticate") == ['ApiKey realm="triogate"']
    assert r.headers["content-type"] == "application/problem+json"


async def test_hashed_key_in_header(start) -> None:
    gw = await start()
    for header in ("apikey", "X-API-Key"):
        r = await gw.client.get("/api/x", headers={header: ALICE_KEY})
        assert r.status == 200, r.content
        h = r.json()["headers"]
        assert "apikey" not in h and "x-api-key" not in h  # stripped
        assert h["x-consumer-username"] == ["alice"] and h["x-consumer-custom-id"] == ["u-1"]
        assert "x-anonymous-consumer" not in h


async def test_plain_keys(start) -> None:
    gw = await start()
    for key in ("bob-plain-key", "bob-second-key"):
        r = await gw.client.get("/api/x", headers={"apikey": key})
        assert r.json()["headers"]["x-consumer-username"] == ["bob"]


async def test_wrong_missing_and_empty_keys(start, upstream: UpstreamServer) -> None:
    gw = await start()
    assert_challenged(await gw.client.get("/api/x"))
    assert_challenged(await gw.client.get("/api/x", headers={"apikey": "nope"}))
    assert_challenged(await gw.client.get("/api/x", headers={"apikey": ""}))
    assert_challenged(await gw.client.get("/api/x", headers={"apikey": ALICE_KEY[:-1]}))
    # the stored hash itself is not a key
    assert_challenged(await gw.client.get("/api/x", headers={"apikey": "sha256:" + "0" * 64}))
    assert upstream.requests == []


async def test_query_key(start) -> None:
    gw = await start(key_in_query=True)
    r = await gw.client.get(f"/api/x?a=1&apikey={ALICE_KEY}&b=2")
    assert r.status == 200
    assert r.json()["query"] == "a=1&b=2"
    gw2 = await start()  # off by default
    assert_challenged(await gw2.client.get(f"/api/x?apikey={ALICE_KEY}"))


async def test_header_wins_over_query(start) -> None:
    gw = await start(key_in_query=True)
    assert_challenged(await gw.client.get(f"/api/x?apikey={ALICE_KEY}", headers={"apikey": "bad"}))


async def test_strip_disabled(start) -> None:
    gw = await start(strip_credential=False)
    assert (await gw.client.get("/api/x", headers={"apikey": ALICE_KEY})).json()["headers"]["apikey"] == [ALICE_KEY]


async def test_anonymous(start) -> None:
    gw = await start(anonymous="guest")
    r = await gw.client.get("/api/x", headers={"x-consumer-username": "alice"})  # spoof attempt
    assert r.status == 200
    h = r.json()["headers"]
    assert h["x-consumer-username"] == ["guest"] and h["x-anonymous-consumer"] == ["true"]
    # a wrong key is a 401 even though anonymous access is allowed
    assert_challenged(await gw.client.get("/api/x", headers={"apikey": "wrong"}))
    r = await gw.client.get("/api/x", headers={"apikey": ALICE_KEY, "x-anonymous-consumer": "true"})
    assert "x-anonymous-consumer" not in r.json()["headers"]


async def test_spoofed_consumer_headers_dropped(start) -> None:
    gw = await start()
    r = await gw.client.get("/api/x", headers={"apikey": "bob-plain-key", "x-consumer-custom-id": "u-1",
                                               "x-consumer-username": "alice"})
    h = r.json()["headers"]
    assert h["x-consumer-username"] == ["bob"] and "x-consumer-custom-id" not in h


async def test_principal(gateway_factory, upstream: UpstreamServer) -> None:
    seen = []

    class Spy(triogate.Plugin):
        priority = 1

        @triogate.hookimpl
        async def transform(self, ctx):
            seen.append(ctx.principal)

    cfg = config(upstream)
    cfg["routes"]["api"]["plugins"]["spy"] = {}
    gw = await gateway_factory(cfg, plugins={"key-auth": KeyAuthPlugin, "spy": Spy})
    await gw.client.get("/api/x", headers={"apikey": ALICE_KEY})
    [p] = seen
    assert (p.consumer, p.credential, p.groups, p.method, p.anonymous) == (
        "alice", "alice/key-auth/0", frozenset({"staff"}), "key-auth", False)
    assert ALICE_KEY not in p.credential
