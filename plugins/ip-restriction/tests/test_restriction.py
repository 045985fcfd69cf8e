"""Allow and deny lists against real clients: socket peers (IPv4 and IPv6) and trusted-proxy X-Forwarded-For."""

import pytest
from triogate.testing import UpstreamServer
from triogate_ip_restriction import IpRestrictionPlugin


def cfg(upstream: UpstreamServer, rules: dict, *, where: str = "global", trusted: list[str] | None = None,
        listen: str = "127.0.0.1:0") -> dict:
    route: dict = {"paths": ["/api"], "upstream": "u"}
    c: dict = {"gateway": {"listen": [listen], "trusted_proxies": trusted or []},
               "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
               "routes": {"api": route, "open": {"paths": ["/open"], "upstream": "u"}}}
    if where == "global":
        c["plugins"] = {"ip-restriction": rules}
    else:
        route["plugins"] = {"ip-restriction": rules}
    return c


async def start(gateway_factory, config: dict):
    return await gateway_factory(config, plugins={"ip-restriction": IpRestrictionPlugin})


def assert_refused(r, status: int = 403) -> None:
    assert r.status == status, r.content
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["request_id"] == r.headers["x-request-id"]


async def test_allow_list(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream, {"allow": ["127.0.0.0/8"]}))
    assert (await gw.client.get("/api/x")).status == 200
    gw = await start(gateway_factory, cfg(upstream, {"allow": ["10.0.0.0/8", "::1"]}))
    r = await gw.client.get("/api/x")
    assert_refused(r)
    assert r.json()["detail"] == "your IP address is not allowed"
    assert_refused(await gw.client.get("/no-such-route"))  # global: refused before routing
    assert len(upstream.requests) == 1


async def test_deny_wins_over_allow(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream, {"allow": ["127.0.0.0/8"], "deny": ["127.0.0.1"],
                                                     "status": 451, "message": "not from here"}))
    r = await gw.client.get("/api/x")
    assert_refused(r, 451)
    assert r.json()["detail"] == "not from here"
    gw = await start(gateway_factory, cfg(upstream, {"deny": ["192.0.2.0/24"]}))
    assert (await gw.client.get("/api/x")).status == 200


async def test_route_instance_only_guards_its_route(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream, {"deny": ["127.0.0.0/8"]}, where="route"))
    assert_refused(await gw.client.get("/api/x"))
    assert (await gw.client.get("/open/x")).status == 200


async def test_ipv6_socket_peer(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream, {"deny": ["::1/128"]}, listen="[::1]:0"))
    assert gw.bound[0][0] == "::1"
    assert_refused(await gw.client.get("/api/x"))
    gw = await start(gateway_factory, cfg(upstream, {"allow": ["::/127"], "deny": ["10.0.0.0/8"]}, listen="[::1]:0"))
    assert (await gw.client.get("/api/x")).status == 200


@pytest.mark.parametrize("xff, allowed", [
    ("203.0.113.9", True),
    ("198.51.100.1", False),                  # denied
    ("2001:db8:1::5", True),
    ("2001:db8:dead::5", False),              # inside the denied /48
    ("198.51.100.1, 203.0.113.9", True),      # the right-most untrusted hop is the client
    ("203.0.113.9, 10.9.9.9", True),          # trusted hops on the right are skipped
    ("not-an-ip", False),                     # garbage: refused, never guessed
])
async def test_forwarded_client_through_trusted_proxy(upstream: UpstreamServer, gateway_factory, xff: str,
                                                      allowed: bool) -> None:
    rules = {"allow": ["203.0.113.0/24", "2001:db8::/32"], "deny": ["198.51.100.0/24", "2001:db8:dead::/48"]}
    gw = await start(gateway_factory, cfg(upstream, rules, trusted=["127.0.0.1/32", "10.0.0.0/8"]))
    r = await gw.client.get("/api/x", headers={"x-forwarded-for": xff})
    if allowed:
        assert r.status == 200, r.content
    else:
        assert_refused(r)


async def test_forwarded_header_from_untrusted_peer_is_ignored(upstream: UpstreamServer, gateway_factory) -> None:
    gw = await start(gateway_factory, cfg(upstream, {"allow": ["203.0.113.0/24"]}))  # no trusted proxies
    assert_refused(await gw.client.get("/api/x", headers={"x-forwarded-for": "203.0.113.9"}))
    gw = await start(gateway_factory, cfg(upstream, {"deny": ["203.0.113.0/24"]}))
    assert (await gw.client.get("/api/x", headers={"x-forwarded-for": "203.0.113.9"})).status == 200
