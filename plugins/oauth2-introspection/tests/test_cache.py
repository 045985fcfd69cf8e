"""Caching by token hash: positive, negative, expiry at min(exp, ttl), bounded size, coalescing."""

from __future__ import annotations

import time

import trio
from triogate.testing import IdentityProvider

from triogate_oauth2_introspection import IntrospectionPlugin

from introspection_support import assert_invalid_token, bearer


def plugin_of(gw) -> IntrospectionPlugin:
    [p] = [p for p in gw.gateway.pipeline.instances if isinstance(p, IntrospectionPlugin)]
    return p


async def test_positive_cache(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(cache_ttl=60)
    token = idp.issue_opaque()
    for _ in range(5):
        assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    assert idp.calls["introspect"] == 1
    # keys are hashes: the raw token is nowhere in the cache
    keys = list(plugin_of(gw).cache._data)  # noqa: SLF001
    assert keys and all(isinstance(k, bytes) and token.encode() not in k for k in keys)


async def test_active_result_expires_after_ttl(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(cache_ttl=0.3)
    token = idp.issue_opaque()
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    idp.revoke(token)
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200  # still cached
    await trio.sleep(0.35)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer(token)))
    assert idp.calls["introspect"] == 2


async def test_active_result_never_outlives_exp(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(cache_ttl=3600)
    token = idp.issue_opaque(exp=int(time.time()) + 2)
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    entry = next(iter(plugin_of(gw).cache._data.values()))  # noqa: SLF001
    assert entry[0] - trio.current_time() <= 2.0


async def test_negative_cache(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(negative_cache_ttl=0.3)
    for _ in range(4):
        assert_invalid_token(await gw.client.get("/api/x", headers=bearer("unknown-token")))
    assert idp.calls["introspect"] == 1
    await trio.sleep(0.35)
    assert_invalid_token(await gw.client.get("/api/x", headers=bearer("unknown-token")))
    assert idp.calls["introspect"] == 2


async def test_cache_disabled(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(cache_ttl=0, negative_cache_ttl=0)
    token = idp.issue_opaque()
    for _ in range(3):
        assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200
    assert idp.calls["introspect"] == 3


async def test_cache_is_bounded(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(cache_size=3)
    tokens = [idp.issue_opaque() for _ in range(5)]
    for t in tokens:
        assert (await gw.client.get("/api/x", headers=bearer(t))).status == 200
    assert len(plugin_of(gw).cache) == 3
    assert (await gw.client.get("/api/x", headers=bearer(tokens[-1]))).status == 200
    assert idp.calls["introspect"] == 5  # the newest stayed
    assert (await gw.client.get("/api/x", headers=bearer(tokens[0]))).status == 200
    assert idp.calls["introspect"] == 6  # the oldest was evicted


async def test_concurrent_lookups_share_one_call(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start()
    idp.delay = 0.3
    token = idp.issue_opaque()
    results: list[int] = []

    async def one() -> None:
        results.append((await gw.client.get("/api/x", headers=bearer(token))).status)

    async with trio.open_nursery() as n:
        for _ in range(20):
            n.start_soon(one)
    assert results == [200] * 20
    assert idp.calls["introspect"] == 1
    # different tokens are not coalesced together
    others = [idp.issue_opaque() for _ in range(3)]
    async with trio.open_nursery() as n:
        for t in others:
            n.start_soon(lambda t=t: gw.client.get("/api/x", headers=bearer(t)))
    assert idp.calls["introspect"] == 4
