"""JSON body rules on responses: edits, re-framing, limits, failure answers, streaming otherwise."""

from __future__ import annotations

import json

import trio
from triogate import Response

RULES = {
    "remove": {"body": ["password_hash", "meta.internal"]},
    "rename": {"body": {"name": "full_name"}},
    "replace": {"body": {"owner": "{principal.sub}"}},
    "add": {"body": {"served_by": "triogate"}},
}


def json_answer(data, *, status=200, chunked=False, content_type="application/json", extra=()):
    async def handler(req):
        payload = data if isinstance(data, bytes) else json.dumps(data).encode()
        headers = [("content-type", content_type), ("etag", '"abc"'), *extra]
        if chunked:
            async def gen():
                for i in range(0, len(payload), 7):
                    yield payload[i:i + 7]

            return Response(status, headers, gen())
        return Response(status, headers, payload)

    return handler


async def test_json_fields_are_edited_and_reframed(response_gateway) -> None:
    gw, _ = await response_gateway(RULES, json_answer(
        {"name": "Ada", "password_hash": "x", "owner": "nobody", "meta": {"internal": 1, "v": 2}, "ü": "é"}))
    r = await gw.client.get("/r", headers={"x-test-sub": "u-1"})
    assert r.status == 200
    assert r.json() == {"full_name": "Ada", "owner": "u-1", "meta": {"v": 2}, "ü": "é", "served_by": "triogate"}
    assert r.headers["content-length"] == str(len(r.content))
    assert "etag" not in r.headers
    assert r.headers["content-type"] == "application/json"


async def test_chunked_upstream_body_gets_a_content_length(response_gateway) -> None:
    gw, _ = await response_gateway(RULES, json_answer([{"name": "a", "password_hash": 1}, {"name": "b"}], chunked=True))
    r = await gw.client.get("/r")
    assert r.json() == [{"full_name": "a", "served_by": "triogate"}, {"full_name": "b", "served_by": "triogate"}]
    assert r.headers["content-length"] == str(len(r.content))
    assert "transfer-encoding" not in r.headers


async def test_body_over_the_limit_is_502(response_gateway) -> None:
    gw, _ = await response_gateway({**RULES, "max_body_bytes": 64},
                                   json_answer({"blob": "x" * 500}, chunked=True))
    r = await gw.client.get("/r")
    assert r.status == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert "larger than 64 bytes" in r.json()["detail"]
    r = await gw.client.get("/r")  # the gateway and its pool keep working
    assert r.status == 502


async def test_invalid_json_is_502(response_gateway) -> None:
    gw, _ = await response_gateway(RULES, json_answer(b'{"name": "Ada"'))
    r = await gw.client.get("/r")
    assert r.status == 502
    assert "not valid JSON" in r.json()["detail"]


async def test_non_json_passes_untouched_or_is_rejected(response_gateway) -> None:
    gw, _ = await response_gateway(RULES, json_answer(b"<html>password_hash</html>", content_type="text/html"))
    r = await gw.client.get("/r")
    assert r.status == 200 and r.content == b"<html>password_hash</html>"
    gw2, _ = await response_gateway({**RULES, "non_json_body": "reject"},
                                    json_answer(b'{"password_hash": 1}', content_type="text/plain"))
    r = await gw2.client.get("/r")
    assert r.status == 502


async def test_encoded_body_is_refused_and_accept_encoding_is_not_forwarded(response_gateway) -> None:
    gw, up = await response_gateway(RULES, json_answer(b"\x1f\x8b...", extra=[("content-encoding", "gzip")]))
    r = await gw.client.get("/r", headers={"accept-encoding": "gzip"})
    assert r.status == 502
    assert up.requests[-1].headers.get("accept-encoding") is None


async def test_no_body_statuses_and_head_are_left_alone(response_gateway) -> None:
    async def handler(req):
        if req.path == "/r/empty":
            return Response(204, [("content-type", "application/json")])
        return Response.json({"name": "x"})

    gw, _ = await response_gateway(RULES, handler, paths=["/r"])
    r = await gw.client.get("/r/empty")
    assert r.status == 204
    r = await gw.client.request("HEAD", "/r/x")
    assert r.status == 200 and r.content == b""


async def test_without_body_rules_the_body_streams(response_gateway) -> None:
    release = trio.Event()

    async def handler(req):
        async def gen():
            yield b'{"first": true'
            with trio.fail_after(5):
                await release.wait()  # only after the client saw the first chunk
            yield b"}"

        return Response(200, [("content-type", "application/json")], gen())

    gw, _ = await response_gateway({"add": {"headers": {"x-a": "1"}}, "max_body_bytes": 4}, handler)
    resp = await gw.client.stream("GET", "/r")
    try:
        assert resp.headers["x-a"] == "1"
        chunks = []
        async for chunk in resp.body:
            chunks.append(chunk)
            release.set()
    finally:
        await resp.body.aclose()
    assert b"".join(chunks) == b'{"first": true}'
    assert "content-length" not in resp.headers

