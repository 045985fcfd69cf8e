from triogate import HTTPClient
from triogate.testing import UpstreamServer


async def test_upstream_server_keeps_bodiless_requests_alive(upstream: UpstreamServer) -> None:
    client = HTTPClient()
    try:
        for _ in range(3):
            assert (await client.fetch("GET", upstream.url + "/a")).status == 200
        # a POST on the reused connection must not find it closed
        assert (await client.fetch("POST", upstream.url + "/b", body=b"x=1")).json()["body"] == "x=1"
        assert upstream.connections == 1
    finally:
        await client.aclose()
