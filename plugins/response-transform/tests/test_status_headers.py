"""Status code mapping and header rules (the body is never read for these)."""

from __future__ import annotations

from triogate import Response


def answer(status: int, headers: list[tuple[str, str]] | None = None):
    async def handler(req):
        return Response(status, [("content-type", "text/plain"), *(headers or [])], b"hello")

    return handler


async def test_status_mapping(response_gateway) -> None:
    gw, _ = await response_gateway({"status": {"500": 502, "404": 410}}, answer(500))
    r = await gw.client.get("/r")
    assert r.status == 502 and r.content == b"hello"
    gw2, _ = await response_gateway({"status": {"500": 502, "404": 410}}, answer(404))
    r = await gw2.client.get("/r")
    assert r.status == 410
    gw3, _ = await response_gateway({"status": {"500": 502}}, answer(201))
    assert (await gw3.client.get("/r")).status == 201


async def test_header_rules_with_templates(response_gateway) -> None:
    gw, _ = await response_gateway({
        "remove": {"headers": ["server", "x-powered-by"]},
        "rename": {"headers": {"x-internal-id": "x-id"}},
        "replace": {"headers": {"cache-control": "private, max-age=60"}},
        "add": {"headers": {"x-user": "{principal.sub}", "x-item": "{id}", "x-req": "{header.x-trace}"}},
        "append": {"headers": {"vary": "Authorization"}},
    }, answer(200, [("server", "app/1.0"), ("x-powered-by", "php"), ("x-internal-id", "42"),
                    ("cache-control", "public"), ("vary", "Accept")]), paths=["/r/{id}"])
    r = await gw.client.get("/r/abc", headers={"x-test-sub": "u-1", "x-trace": "t-9"})
    assert r.status == 200 and r.content == b"hello"
    h = r.headers
    assert "server" not in h and "x-powered-by" not in h and "x-internal-id" not in h
    assert h["x-id"] == "42"
    assert h["cache-control"] == "private, max-age=60"
    assert h["x-user"] == "u-1" and h["x-item"] == "abc" and h["x-req"] == "t-9"
    assert h.get_all("vary") == ["Accept", "Authorization"]


async def test_answers_the_gateway_makes_on_the_route_are_transformed_too(response_gateway) -> None:
    from triogate.testing import ResetConnection

    async def broken(req):
        raise ResetConnection()

    gw, _ = await response_gateway({"add": {"headers": {"x-env": "prod"}}, "status": {"502": 503}}, broken)
    r = await gw.client.get("/r")  # the upstream resets: the gateway's 502, mapped
    assert r.status == 503 and r.headers["x-env"] == "prod"
    assert r.headers["content-type"] == "application/problem+json"
    r = await gw.client.get("/nope")  # no route: this route's plugin does not run
    assert r.status == 404 and "x-env" not in r.headers
