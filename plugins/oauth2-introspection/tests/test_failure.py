"""Fail closed: an unreachable, slow, broken or misconfigured endpoint is a 503 within the timeout."""

from __future__ import annotations

import pytest
import trio
from triogate.testing import IdentityProvider, UpstreamServer, free_port

from introspection_support import bearer


@pytest.mark.parametrize("outage", ["error", "reset", "hang"])
async def test_endpoint_down_is_503(outage, start, identity_provider: IdentityProvider,
                                    upstream: UpstreamServer) -> None:
    idp = identity_provider
    gw = await start(timeout=0.3)
    token = idp.issue_opaque()
    idp.outage = outage
    t0 = trio.current_time()
    with trio.fail_after(3):
        r = await gw.client.get("/api/x", headers=bearer(token))
    assert r.status == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert trio.current_time() - t0 < 1.5
    assert upstream.requests == []
    idp.outage = None  # failures are not cached: it works again at once
    assert (await gw.client.get("/api/x", headers=bearer(token))).status == 200


async def test_concurrent_callers_all_fail_closed(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(timeout=0.3)
    idp.outage = "hang"
    token = idp.issue_opaque()
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await gw.client.get("/api/x", headers=bearer(token))).status)

    with trio.fail_after(3):
        async with trio.open_nursery() as n:
            for _ in range(10):
                n.start_soon(one)
    assert statuses == [503] * 10
    assert idp.calls["introspect"] == 1


async def test_connection_refused_is_503(gateway_factory, upstream: UpstreamServer) -> None:
    from triogate_oauth2_introspection import IntrospectionPlugin

    from introspection_support import config

    class Nowhere:
        introspection_url = f"http://127.0.0.1:{free_port()}/introspect"
        client_id = "x"
        client_secret = "y"

    gw = await gateway_factory(config(upstream, Nowhere, timeout=0.5),  # type: ignore[arg-type]
                               plugins={"oauth2-introspection": IntrospectionPlugin})
    with trio.fail_after(3):
        assert (await gw.client.get("/api/x", headers=bearer("t"))).status == 503


async def test_wrong_client_secret_is_503_not_401(start, identity_provider: IdentityProvider) -> None:
    gw = await start(client_secret="wrong")
    r = await gw.client.get("/api/x", headers=bearer(identity_provider.issue_opaque()))
    assert r.status == 503


async def test_not_rfc7662_is_503(start, identity_provider: IdentityProvider, upstream_factory) -> None:
    weird = await upstream_factory(lambda req: _json({"ok": True}))
    gw = await start(introspection_url=weird.url + "/introspect")
    assert (await gw.client.get("/api/x", headers=bearer("t"))).status == 503


async def _json(data):
    return data
