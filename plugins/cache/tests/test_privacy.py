"""No cross-consumer leakage: Authorization, authenticated consumers, private responses, per-consumer keys."""

from __future__ import annotations

from triogate import Response


def per_user(cc: str):
    async def handler(req):
        who = req.headers.get("authorization") or req.headers.get("x-user") or "anonymous"
        return Response(200, [("cache-control", cc)], f"data of {who}".encode())

    return handler


async def test_authorized_responses_are_not_stored_without_permission(upstream_factory, cached, status_of,
                                                                      calls) -> None:
    up = await upstream_factory(per_user("max-age=60"))
    gw = await cached(up)
    r = await gw.client.get("/me", headers={"authorization": "Bearer alice"})
    assert "detail=authorization" in status_of(r)
    r = await gw.client.get("/me", headers={"authorization": "Bearer bob"})
    assert r.content == b"data of Bearer bob"
    r = await gw.client.get("/me")
    assert r.content == b"data of anonymous"
    assert calls(up, "/me") == 3


async def test_consumers_from_the_auth_phase_count_as_authorized(upstream_factory, cached, status_of) -> None:
    up = await upstream_factory(per_user("max-age=60"))
    gw = await cached(up, route={"plugins": {"cache": {}, "header-auth": {}}})
    await gw.client.get("/me", headers={"x-user": "alice"})
    r = await gw.client.get("/me", headers={"x-user": "bob"})
    assert r.content == b"data of bob"


async def test_explicitly_shareable_authorized_responses_are_stored(upstream_factory, cached, status_of) -> None:
    for cc in ("public, max-age=60", "s-maxage=60", "max-age=60, must-revalidate"):
        up = await upstream_factory(per_user(cc))
        gw = await cached(up)
        await gw.client.get("/pub", headers={"authorization": "Bearer alice"})
        r = await gw.client.get("/pub", headers={"authorization": "Bearer bob"})
        assert "hit" in status_of(r), cc  # the origin said this is the same for everyone


async def test_per_consumer_keys_keep_shareable_responses_apart(upstream_factory, cached, status_of,
                                                                calls) -> None:
    up = await upstream_factory(per_user("s-maxage=60"))
    gw = await cached(up, cache={"key_consumer": True},
                      route={"plugins": {"cache": {"key_consumer": True}, "header-auth": {}}})
    assert (await gw.client.get("/me", headers={"x-user": "alice"})).content == b"data of alice"
    r = await gw.client.get("/me", headers={"x-user": "bob"})
    assert r.content == b"data of bob" and "fwd=uri-miss" in status_of(r)
    r = await gw.client.get("/me", headers={"x-user": "alice"})
    assert r.content == b"data of alice" and "hit" in status_of(r)
    r = await gw.client.get("/me")
    assert r.content == b"data of anonymous"
    assert calls(up, "/me") == 3


async def test_private_is_never_shared_even_per_consumer(upstream_factory, cached, calls) -> None:
    up = await upstream_factory(per_user("private, max-age=60"))
    gw = await cached(up, route={"plugins": {"cache": {"key_consumer": True}, "header-auth": {}}})
    for user in ("alice", "alice", "bob"):
        r = await gw.client.get("/me", headers={"x-user": user})
        assert r.content == f"data of {user}".encode()
    assert calls(up, "/me") == 3
