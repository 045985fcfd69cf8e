"""Template values cannot change which backend URL is called (checked on the recorded request)."""

from __future__ import annotations

from triogate import Plugin, Principal, hookimpl


async def _gateway(backend, aggregate_gateway, **kw):
    users = await backend(lambda req: {"seen": req.raw_path})
    gw = await aggregate_gateway({"users": users}, {"backends": {
        "users": {"upstream": "users", "path": "/users/{id}/profile?expand={query.expand}&v=1"},
    }}, paths=["/agg/{id}"], **kw)
    return users, gw


async def test_path_param_with_an_encoded_slash_stays_one_segment(backend, aggregate_gateway) -> None:
    # encoded slashes are refused by default (gateway.paths.encoded_slash); kept, they stay one segment
    users, gw = await _gateway(backend, aggregate_gateway, gateway={"paths": {"encoded_slash": "keep"}})
    r = await gw.client.get("/agg/a%2Fb%5Cc?expand=x")
    assert r.status == 200, r.content
    req = users.requests[-1]
    assert req.path == "/users/a%2Fb%5Cc/profile"
    assert req.query == "expand=x&v=1"


async def test_dot_segments_behind_encoded_slashes_never_reach_a_backend(backend, aggregate_gateway) -> None:
    users = await backend({"ok": True})
    gw = await aggregate_gateway({"users": users}, {"backends": {
        "users": {"upstream": "users", "path": "/users/{query.id}/x"}}})
    for bad in ("../../admin", "..%2F..%2Fadmin", "a/../b", "..%5Cx", "..%3Bx=1", "./x"):
        r = await gw.client.get(f"/agg?id={bad.replace('/', '%2F')}")
        assert r.status == 400, (bad, r.content)
        assert "dot-segment" in r.json()["detail"], bad
    assert users.requests == []


async def test_question_mark_and_hash_in_param_are_encoded(backend, aggregate_gateway) -> None:
    users, gw = await _gateway(backend, aggregate_gateway)
    r = await gw.client.get("/agg/1%3Fadmin=true%23frag?expand=y")
    assert r.status == 200, r.content
    req = users.requests[-1]
    assert req.path == "/users/1%3Fadmin%3Dtrue%23frag/profile"
    assert req.query == "expand=y&v=1"


async def test_query_value_cannot_add_parameters(backend, aggregate_gateway) -> None:
    users, gw = await _gateway(backend, aggregate_gateway)
    r = await gw.client.get("/agg/1?expand=a%26v%3D2%23x")
    assert r.status == 200
    req = users.requests[-1]
    assert req.path == "/users/1/profile"
    assert req.query == "expand=a%26v%3D2%23x&v=1"
    r = await gw.client.get("/agg/1?expand=..%2F..%2Fx%2F")
    assert users.requests[-1].query == "expand=..%2F..%2Fx%2F&v=1"


async def test_dot_segment_values_are_refused(backend, aggregate_gateway) -> None:
    users = await backend({"ok": True})
    gw = await aggregate_gateway({"users": users}, {"backends": {
        "users": {"upstream": "users", "path": "/users/{query.id}/x"}}})
    for bad in ("..", ".", "", "%2E%2E"):
        r = await gw.client.get(f"/agg?id={bad}")
        assert r.status == 400, (bad, r.content)
    assert users.requests == []
    r = await gw.client.get("/agg?id=...")  # not a dot-segment
    assert r.status == 200
    assert users.requests[-1].path == "/users/.../x"


async def test_values_from_backends_and_principal_are_encoded(backend, aggregate_gateway) -> None:
    evil = await backend({"id": "admin?x=1#/y", "n": 3.5, "flag": True})
    target = await backend(lambda req: {"t": req.raw_path})

    class FakeAuth(Plugin):
        priority = 1000

        @hookimpl
        async def auth(self, ctx):
            ctx.principal = Principal(consumer="c/1", claims={"sub": "a b/c", "org": {"id": "o?1"}})

    gw = await aggregate_gateway({"evil": evil, "target": target}, {"backends": {
        "evil": {"upstream": "evil", "path": "/e", "group": "evil"},
        "target": {"upstream": "target", "path": "/t/{resp.evil.id}/{principal.sub}/{principal.org.id}"
                                                "?c={principal.consumer}&n={resp.evil.n}&f={resp.evil.flag}",
                   "headers": {"x-sub": "{principal.sub}"}},
    }}, extra_plugins={"fake-auth": {}}, plugin_classes={"fake-auth": FakeAuth})
    r = await gw.client.get("/agg")
    assert r.status == 200, r.content
    req = target.requests[-1]
    assert req.path == "/t/admin%3Fx%3D1%23%2Fy/a%20b%2Fc/o%3F1"
    assert req.query == "c=c%2F1&n=3.5&f=true"
    assert req.headers.get("x-sub") == "a b/c"


async def test_header_injection_through_a_template_is_refused(backend, aggregate_gateway) -> None:
    users = await backend({"ok": True})
    gw = await aggregate_gateway({"users": users}, {"backends": {
        "users": {"upstream": "users", "path": "/u", "headers": {"x-name": "{query.name}"}}}})
    r = await gw.client.get("/agg?name=a%0d%0aX-Admin:%20yes")
    assert r.status == 400
    assert users.requests == []
    r = await gw.client.get("/agg?name=ok")
    assert r.status == 200
    assert users.requests[-1].headers.get("x-name") == "ok"
