from triogate.testing import UpstreamServer


async def test_proxy_roundtrip(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/api"], "upstream": "u", "strip_prefix": "/api"}},
    })
    r = await gw.client.get("/api/hello?x=1", headers={"x-test": "1"})
    assert r.status == 200, r.content
    data = r.json()
    assert data["path"] == "/hello"
    assert data["query"] == "x=1"
    assert data["headers"]["x-forwarded-for"] == ["127.0.0.1"]
    assert "x-request-id" in r.headers
    r2 = await gw.client.get("/nope")
    assert r2.status == 404
    assert r2.headers["content-type"] == "application/problem+json"
    r3 = await gw.client.post("/api/x", body=b"hello")
    assert r3.json()["body"] == "hello"
