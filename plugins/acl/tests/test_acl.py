"""Behaviour: allow and deny by group, role, scope and consumer; 403 problem+json."""

from __future__ import annotations

from triogate.testing import UpstreamServer

from acl_support import who


def assert_denied(r) -> None:
    assert r.status == 403, r.content
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].startswith("access denied")


async def test_allow_by_group(start, upstream: UpstreamServer) -> None:
    gw = await start(allow=["staff", "ops"])
    assert (await gw.client.get("/api/x", headers=who(consumer="a", groups=["ops"]))).status == 200
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="b", groups=["public"])))
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="c")))
    assert len(upstream.requests) == 1


async def test_deny_wins(start) -> None:
    gw = await start(allow=["staff"], deny=["banned"])
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="a", groups=["staff", "banned"])))
    gw = await start(deny=["banned"])
    assert (await gw.client.get("/api/x", headers=who(consumer="a", groups=["anything"]))).status == 200
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="a", groups=["banned"])))


async def test_roles_and_scopes(start) -> None:
    gw = await start(allow=["role:admin", "scope:orders:write"], roles_claim="realm_access.roles")
    assert (await gw.client.get("/api/x", headers=who(claims={"realm_access": {"roles": ["admin"]}}))).status == 200
    assert (await gw.client.get("/api/x", headers=who(scopes=["orders:write"]))).status == 200
    assert_denied(await gw.client.get("/api/x", headers=who(claims={"roles": ["admin"]}, scopes=["orders:read"])))
    # a group named like a role does not count as the role
    assert_denied(await gw.client.get("/api/x", headers=who(groups=["admin"])))


async def test_deny_by_scope_and_consumer(start) -> None:
    gw = await start(deny=["scope:readonly", "consumer:mallory"])
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="a", scopes=["readonly"])))
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="mallory")))
    assert (await gw.client.get("/api/x", headers=who(consumer="alice"))).status == 200


async def test_anonymous_is_judged_by_its_groups(start) -> None:
    gw = await start(allow=["public"])
    assert (await gw.client.get("/api/x", headers=who(consumer="guest", groups=["public"], anonymous=True))).status == 200
    gw = await start(allow=["staff"])
    assert_denied(await gw.client.get("/api/x", headers=who(consumer="guest", groups=["public"], anonymous=True)))


async def test_no_principal_is_denied(start, upstream: UpstreamServer) -> None:
    gw = await start(allow=["staff"])
    assert_denied(await gw.client.get("/api/x"))
    assert upstream.requests == []
