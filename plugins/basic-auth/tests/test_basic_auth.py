"""Behaviour: bcrypt and argon2 verification, failures, stripping, anonymous, consumer headers, cache."""

from __future__ import annotations

import trio
import triogate
from triogate.testing import UpstreamServer

from triogate_basic_auth import BasicAuthPlugin

from basic_auth_support import basic, config


def assert_challenged(r) -> None:
    assert r.status == 401, r.content
    assert r.headers.get_all("www-authenticate") == ['Basic realm="triogate", charset="UTF-8"']


async def test_bcrypt_and_argon2(start) -> None:
    gw = await start()
    r = await gw.client.get("/api/x", headers=basic("alice", "älice-pw"))
    assert r.status == 200, r.content
    h = r.json()["headers"]
    assert "authorization" not in h
    assert h["x-consumer-username"] == ["alice"] and h["x-consumer-custom-id"] == ["u-1"]
    for user, pw in (("bob", "bob-pw"), ("bob2", "älice-pw")):
        r = await gw.client.get("/api/x", headers=basic(user, pw))
        assert r.status == 200 and r.json()["headers"]["x-consumer-username"] == ["bob"]


async def test_failures(start, upstream: UpstreamServer) -> None:
    gw = await start()
    assert_challenged(await gw.client.get("/api/x"))
    assert_challenged(await gw.client.get("/api/x", headers=basic("alice", "wrong")))
    assert_challenged(await gw.client.get("/api/x", headers=basic("nobody", "älice-pw")))
    assert_challenged(await gw.client.get("/api/x", headers=basic("bob", "älice-pw")))  # another user's password
    assert_challenged(await gw.client.get("/api/x", headers=basic("alice", "x" * 100)))  # beyond bcrypt's 72 bytes
    assert_challenged(await gw.client.get("/api/x", headers={"authorization": "Basic !!!notbase64"}))
    assert_challenged(await gw.client.get("/api/x", headers={"authorization": "Basic YWxpY2U="}))  # no colon
    assert_challenged(await gw.client.get("/api/x", headers={"authorization": "Bearer abc"}))
    assert upstream.requests == []


async def test_event_loop_keeps_running_during_checks(start) -> None:
    """Hash checks run in threads: other requests are served meanwhile."""
    gw = await start(cache_ttl=0)
    statuses: list[int] = []

    async def one(pw: str) -> None:
        statuses.append((await gw.client.get("/api/x", headers=basic("bob", pw))).status)

    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            for i in range(8):
                n.start_soon(one, "bob-pw" if i % 2 else "nope")
    assert sorted(statuses) == [200] * 4 + [401] * 4


async def test_verified_pairs_are_cached_by_hmac(gateway_factory, upstream: UpstreamServer) -> None:
    gw = await gateway_factory(config(upstream), plugins={"basic-auth": BasicAuthPlugin})
    [plugin] = [p for p in gw.gateway.pipeline.instances if isinstance(p, BasicAuthPlugin)]
    for _ in range(3):
        assert (await gw.client.get("/api/x", headers=basic("alice", "älice-pw"))).status == 200
    assert len(plugin._verified) == 1  # noqa: SLF001
    [key] = plugin._verified  # noqa: SLF001
    assert "älice-pw".encode() not in key and len(key) == 32
    assert_challenged(await gw.client.get("/api/x", headers=basic("alice", "wrong")))
    assert len(plugin._verified) == 1  # failures are never cached  # noqa: SLF001


async def test_anonymous(start) -> None:
    gw = await start(anonymous="guest")
    r = await gw.client.get("/api/x")
    assert r.status == 200
    assert r.json()["headers"]["x-consumer-username"] == ["guest"]
    assert r.json()["headers"]["x-anonymous-consumer"] == ["true"]
    assert_challenged(await gw.client.get("/api/x", headers=basic("alice", "wrong")))


async def test_principal(gateway_factory, upstream: UpstreamServer) -> None:
    seen = []

    class Spy(triogate.Plugin):
        priority = 1

        @triogate.hookimpl
        async def transform(self, ctx):
            seen.append(ctx.principal)

    cfg = config(upstream)
    cfg["routes"]["api"]["plugins"]["spy"] = {}
    gw = await gateway_factory(cfg, plugins={"basic-auth": BasicAuthPlugin, "spy": Spy})
    await gw.client.get("/api/x", headers=basic("alice", "älice-pw"))
    [p] = seen
    assert (p.consumer, p.credential, p.groups, p.method) == ("alice", "alice/basic-auth/alice",
                                                             frozenset({"staff"}), "basic-auth")
