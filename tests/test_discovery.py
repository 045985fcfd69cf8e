"""DNS service discovery against a real authoritative DNS server on loopback (UDP).

The server below answers A and SRV queries from a table the tests change at run time (answers,
TTLs, NXDOMAIN, silence); the upstreams are real servers on 127.0.0.2 / 127.0.0.3 (Linux routes
all of 127/8 to lo) or on 127.0.0.1 with different ports (SRV).
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import trio
from triogate import Response
from triogate.config import ConfigError, parse_config
from triogate.testing import UpstreamServer


class DNSServer:
    """A tiny authoritative server: ``records[(name, type)] = (ttl, [rdata text, ...])`` (A, AAAA, SRV).

    ``down = True`` makes it swallow queries (a resolver that does not answer); a name not in
    the table is NXDOMAIN. ``glue`` adds the A and AAAA records of SRV targets to the additional section.
    """

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], tuple[int, list[str]]] = {}
        self.queries: list[tuple[str, str]] = []
        self.down = False
        self.glue = True
        self.port = 0

    def set(self, name: str, rdtype: str, rdatas: list[str], ttl: int = 1) -> None:
        self.records[(name.rstrip(".").lower(), rdtype)] = (ttl, rdatas)

    def count(self, name: str, rdtype: str) -> int:
        return self.queries.count((name.rstrip(".").lower(), rdtype))

    def _rrset(self, name: str, rdtype: str) -> dns.rrset.RRset | None:
        found = self.records.get((name, rdtype))
        if found is None:
            return None
        ttl, rdatas = found
        return dns.rrset.from_text_list(name + ".", ttl, "IN", rdtype, rdatas)

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(q.rdtype)
        self.queries.append((name, rdtype))
        if self.down:
            return None
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        rrset = self._rrset(name, rdtype)
        if rrset is not None:
            resp.answer.append(rrset)
            if rdtype == "SRV" and self.glue:
                for rr in rrset:
                    for glue_type in ("A", "AAAA"):
                        glue = self._rrset(rr.target.to_text(omit_final_dot=True).lower(), glue_type)
                        if glue is not None:
                            resp.additional.append(glue)
        elif not any(n == name for n, _ in self.records):
            resp.set_rcode(dns.rcode.NXDOMAIN)
        return resp.to_wire()

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            await sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            task_status.started(self)
            while True:
                data, peer = await sock.recvfrom(4096)
                reply = self.answer(data)
                if reply is not None:
                    await sock.sendto(reply, peer)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def dns_server(nursery: trio.Nursery) -> DNSServer:
    return await nursery.start(DNSServer().run)


def named(name: str) -> Any:
    async def handler(req: Any) -> Response:
        return Response.json({"served_by": name})
    return handler


def discovery_config(dns_server: DNSServer, **discovery: Any) -> dict[str, Any]:
    table = {"resolvers": [dns_server.address], "min_ttl": 0.05, "interval": 0.1, "timeout": 0.5, **discovery}
    return {
        "upstreams": {"u": {"discovery": table}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def pair_on_one_port(upstream_factory: Any, handler: Any = None) -> tuple[UpstreamServer, UpstreamServer]:
    """Two upstreams on 127.0.0.2 and 127.0.0.3, same port (what A records describe)."""
    a = await upstream_factory(handler or named("a"), host="127.0.0.2")
    b = await upstream_factory(handler or named("b"), host="127.0.0.3", port=a.port)
    return a, b


async def served_by(gw: Any, path: str = "/") -> str:
    resp = await gw.client.get(path)
    assert resp.status == 200, resp.content
    return resp.json()["served_by"]


async def test_a_records_spread_requests_over_every_address(dns_server, upstream_factory, gateway_factory):
    a, _ = await pair_on_one_port(upstream_factory)
    dns_server.set("svc.test", "A", ["127.0.0.2", "127.0.0.3"], ttl=30)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port))
    seen = Counter([await served_by(gw) for _ in range(10)])
    assert seen == {"a": 5, "b": 5}
    up = gw.gateway.upstreams["u"]
    assert sorted(t.url for t in up.targets) == [f"http://127.0.0.2:{a.port}", f"http://127.0.0.3:{a.port}"]
    assert up.status()["discovery"] == {"type": "a", "name": "svc.test"}


async def test_a_changed_answer_takes_effect_when_the_ttl_expires(dns_server, upstream_factory, gateway_factory):
    a, _ = await pair_on_one_port(upstream_factory)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=1)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port, min_ttl=0.1))
    assert {await served_by(gw) for _ in range(4)} == {"a"}
    target_a = gw.gateway.upstreams["u"].targets[0]
    dns_server.set("svc.test", "A", ["127.0.0.2", "127.0.0.3"], ttl=1)
    with trio.fail_after(10):
        while len(gw.gateway.upstreams["u"].targets) < 2:
            await trio.sleep(0.05)
    assert {await served_by(gw) for _ in range(4)} == {"a", "b"}
    # the target that stayed is the same object: its pool, health and circuit state stay too
    assert target_a in gw.gateway.upstreams["u"].targets


async def test_ttl_is_clamped_to_min_ttl(dns_server, upstream_factory, gateway_factory):
    """A TTL of 0 (Consul's default) does not turn into a query storm: min_ttl is the floor."""
    a, _ = await pair_on_one_port(upstream_factory)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=0)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port, min_ttl=30))
    assert await served_by(gw) == "a"
    await trio.sleep(0.3)
    assert dns_server.count("svc.test", "A") == 1


async def test_ttl_is_clamped_to_max_ttl(dns_server, upstream_factory, gateway_factory):
    """A day-long TTL does not freeze the targets: max_ttl is the ceiling, the name is asked again."""
    a, _ = await pair_on_one_port(upstream_factory)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=86400)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port, max_ttl=0.2))
    assert await served_by(gw) == "a"
    dns_server.set("svc.test", "A", ["127.0.0.3"], ttl=86400)
    with trio.fail_after(10):
        while await served_by(gw) != "b":
            await trio.sleep(0.05)
    assert dns_server.count("svc.test", "A") >= 2


async def test_srv_records_give_ports_weights_and_priorities(dns_server, upstream_factory, gateway_factory):
    heavy = await upstream_factory(named("heavy"))
    light = await upstream_factory(named("light"))
    backup = await upstream_factory(named("backup"))
    dns_server.set("_http._tcp.svc.test", "SRV", [
        f"10 30 {heavy.port} heavy.svc.test.", f"10 10 {light.port} light.svc.test.",
        f"20 10 {backup.port} backup.svc.test.",
    ], ttl=30)
    for host in ("heavy", "light", "backup"):
        dns_server.set(f"{host}.svc.test", "A", ["127.0.0.1"], ttl=30)
    cfg = discovery_config(dns_server, type="srv", name="_http._tcp.svc.test")
    cfg["upstreams"]["u"].update(retries=2, circuit_breaker={"failures": 1, "open_seconds": 60})
    gw = await gateway_factory(cfg)
    up = gw.gateway.upstreams["u"]
    assert sorted((t.url, t.weight, t.priority) for t in up.targets) == sorted([
        (heavy.url, 30, 10), (light.url, 10, 10), (backup.url, 10, 20)])
    # priority 10 serves, 3:1 by weight; priority 20 only when every priority-10 target is down
    assert Counter([await served_by(gw) for _ in range(8)]) == {"heavy": 6, "light": 2}
    heavy.stop()
    light.stop()
    assert await served_by(gw) == "backup"
    assert {await served_by(gw) for _ in range(3)} == {"backup"}


async def test_srv_targets_without_glue_are_resolved_by_name(dns_server, upstream_factory, gateway_factory):
    one = await upstream_factory(named("one"), host="127.0.0.2")
    two = await upstream_factory(named("two"), host="127.0.0.3")
    dns_server.glue = False
    dns_server.set("_http._tcp.svc.test", "SRV", [f"0 0 {one.port} one.svc.test.", f"0 0 {two.port} two.svc.test.",
                                                  "0 0 9 gone.svc.test."])  # gone: NXDOMAIN, left out
    dns_server.set("one.svc.test", "A", ["127.0.0.2"])
    dns_server.set("two.svc.test", "A", ["127.0.0.3"])
    gw = await gateway_factory(discovery_config(dns_server, type="srv", name="_http._tcp.svc.test"))
    # weight 0 everywhere means "no preference": equal shares
    assert Counter([await served_by(gw) for _ in range(4)]) == {"one": 2, "two": 2}
    assert dns_server.count("one.svc.test", "A") >= 1 and dns_server.count("gone.svc.test", "A") >= 1
    assert len(gw.gateway.upstreams["u"].targets) == 2


async def test_resolver_down_keeps_the_last_known_addresses(dns_server, upstream_factory, gateway_factory, caplog):
    a, _ = await pair_on_one_port(upstream_factory)
    dns_server.set("svc.test", "A", ["127.0.0.2", "127.0.0.3"], ttl=1)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port, min_ttl=0.1,
                                                timeout=0.2))
    before = [t.url for t in gw.gateway.upstreams["u"].targets]
    dns_server.down = True
    asked = dns_server.count("svc.test", "A")
    with caplog.at_level(logging.WARNING, logger="triogate"), trio.fail_after(10):
        while dns_server.count("svc.test", "A") < asked + 3:  # three unanswered re-resolutions
            await trio.sleep(0.05)
        assert Counter([await served_by(gw) for _ in range(4)]) == {"a": 2, "b": 2}
    assert [t.url for t in gw.gateway.upstreams["u"].targets] == before
    assert any("keeping the last known addresses" in r.getMessage() for r in caplog.records)


async def test_a_name_that_does_not_resolve_is_a_503_until_it_does(dns_server, upstream_factory, gateway_factory,
                                                                   upstream, caplog):
    a, _ = await pair_on_one_port(upstream_factory)
    cfg = discovery_config(dns_server, type="a", name="later.test", port=a.port)
    cfg["upstreams"]["static"] = {"targets": [{"url": upstream.url}]}
    cfg["routes"]["other"] = {"paths": ["/other"], "upstream": "static"}
    with caplog.at_level(logging.WARNING, logger="triogate"):
        gw = await gateway_factory(cfg)
        resp = await gw.client.get("/")
    assert resp.status == 503
    assert resp.headers["content-type"] == "application/problem+json"
    problem = json.loads(resp.content)
    assert "has not resolved" in problem["detail"] and problem["request_id"]
    assert any("later.test" in r.getMessage() and "requests get 503" in r.getMessage() for r in caplog.records)
    assert (await gw.client.get("/other")).status == 200  # the rest of the gateway serves on
    dns_server.set("later.test", "A", ["127.0.0.3"], ttl=30)
    with trio.fail_after(10):
        while (resp := await gw.client.get("/")).status == 503:
            await trio.sleep(0.05)
    assert resp.status == 200 and resp.json() == {"served_by": "b"}


async def test_removed_target_drains_its_requests_in_flight(dns_server, upstream_factory, gateway_factory, nursery):
    release = trio.Event()
    arrived = trio.Event()

    async def slow_b(req: Any) -> Response:
        if req.path == "/slow":
            arrived.set()
            await release.wait()
        return Response.json({"served_by": "b"})

    a = await upstream_factory(named("a"), host="127.0.0.2")
    await upstream_factory(slow_b, host="127.0.0.3", port=a.port)
    dns_server.set("svc.test", "A", ["127.0.0.3"], ttl=1)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port, min_ttl=0.1))
    old = gw.gateway.upstreams["u"].targets[0]
    result: dict[str, Any] = {}

    async def slow_request() -> None:
        resp = await gw.client.get("/slow")
        result["status"], result["body"] = resp.status, resp.json()

    nursery.start_soon(slow_request)
    with trio.fail_after(10):
        await arrived.wait()
        dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=1)
        while [t.url for t in gw.gateway.upstreams["u"].targets] != [f"http://127.0.0.2:{a.port}"]:
            await trio.sleep(0.05)
        assert {await served_by(gw) for _ in range(3)} == {"a"}  # new requests go to the new address
        assert old.pool.closed and not result  # the removed target takes nothing new; its request runs on
        release.set()
        while not result:
            await trio.sleep(0.01)
    assert result == {"status": 200, "body": {"served_by": "b"}}
    assert old.pool.open_connections == 0  # its connection was closed when the response ended


async def test_check_does_no_dns(dns_server, tmp_path):
    """`triogate check` validates discovery tables without a single query: the resolver here never
    answers, and check returns at once with nothing asked."""
    dns_server.down = True
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[upstreams.u.discovery]
type = "srv"
name = "_http._tcp.svc.test"
resolvers = ["{dns_server.address}"]
timeout = 30

[upstreams.sys.discovery]
type = "a"
name = "never-resolved.invalid"
port = 8080

[routes.r]
paths = ["/"]
upstream = "u"

[routes.s]
paths = ["/s"]
upstream = "sys"
""")
    with trio.fail_after(20):
        done = await trio.run_process([sys.executable, "-m", "triogate", "check", "-c", str(config)],
                                      capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"ok" in done.stdout
    assert dns_server.queries == []


@pytest.mark.parametrize(("discovery", "error"), [
    ({"type": "a", "name": "svc.test"}, 'upstreams.u.discovery.port: required with type = "a"'),
    ({"type": "srv", "name": "svc.test", "port": 80}, 'upstreams.u.discovery.port: not used with type = "srv"'),
    ({"type": "a", "name": "svc.test", "port": 80, "resolvers": ["dns.local:53"]},
     'upstreams.u.discovery.resolvers[0]: expected "ip:port" of a DNS server'),
    ({"type": "a", "name": "svc.test", "port": 80, "min_ttl": 10, "max_ttl": 5},
     "upstreams.u.discovery.max_ttl: must be at least min_ttl (10.0), got 5.0"),
    ({"type": "mx", "name": "svc.test"}, "upstreams.u.discovery.type: expected one of"),
])
def test_discovery_config_errors_name_the_key(discovery, error):
    with pytest.raises(ConfigError) as exc:
        parse_config({"upstreams": {"u": {"discovery": discovery}}})
    assert any(e.startswith(error) for e in exc.value.errors), exc.value.errors


def test_targets_and_discovery_are_exclusive():
    both = {"targets": [{"url": "http://127.0.0.1:1"}], "discovery": {"type": "a", "name": "x.test", "port": 1}}
    with pytest.raises(ConfigError) as exc:
        parse_config({"upstreams": {"u": both}})
    assert exc.value.errors == [
        "upstreams.u.targets: set either targets or discovery, not both (discovery makes the targets)"]


async def test_system_resolver_without_resolvers(upstream_factory, gateway_factory):
    """No ``resolvers``: getaddrinfo (here /etc/hosts' localhost), re-resolved every ``interval``."""
    up = await upstream_factory(named("local"))
    gw = await gateway_factory({
        "upstreams": {"u": {"discovery": {"type": "a", "name": "localhost", "port": up.port, "interval": 60}}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    })
    assert [t.url for t in gw.gateway.upstreams["u"].targets] == [f"http://127.0.0.1:{up.port}"]
    assert await served_by(gw) == "local"


async def test_discovered_targets_get_health_checks(dns_server, upstream_factory, gateway_factory):
    """A target added by DNS is probed from then on; one that fails its probes leaves the rotation."""
    async def sick(req: Any) -> Response:
        return Response(503) if req.path == "/health" else Response.json({"served_by": "b"})

    a = await upstream_factory(named("a"), host="127.0.0.2")
    b = await upstream_factory(sick, host="127.0.0.3", port=a.port)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=1)
    cfg = discovery_config(dns_server, type="a", name="svc.test", port=a.port, min_ttl=0.1)
    cfg["upstreams"]["u"]["health_check"] = {"path": "/health", "interval": 0.05, "unhealthy_threshold": 1}
    gw = await gateway_factory(cfg)
    dns_server.set("svc.test", "A", ["127.0.0.2", "127.0.0.3"], ttl=1)
    with trio.fail_after(10):
        while not any(r.path == "/health" for r in b.requests):
            await trio.sleep(0.05)
        target_b = next(t for t in gw.gateway.upstreams["u"].targets if t.url.startswith("http://127.0.0.3"))
        while target_b.healthy:
            await trio.sleep(0.05)
    assert {await served_by(gw) for _ in range(4)} == {"a"}


def test_the_examples_of_discovery_md_are_valid_config():
    text = (Path(__file__).parent.parent / "docs" / "discovery.md").read_text()
    blocks = text.split("```toml\n")[1:]
    assert len(blocks) >= 3
    for block in blocks:
        cfg = parse_config(tomllib.loads(block.split("```")[0]))
        assert all(up.discovery is not None for up in cfg.upstreams.values())


async def test_reload_stops_the_old_generations_discovery(dns_server, upstream_factory, gateway_factory):
    a, _ = await pair_on_one_port(upstream_factory)
    dns_server.set("old.test", "A", ["127.0.0.2"], ttl=0)
    dns_server.set("new.test", "A", ["127.0.0.3"], ttl=0)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="old.test", port=a.port))
    assert await served_by(gw) == "a"
    old = gw.gateway.upstreams["u"]
    assert await gw.reload(discovery_config(dns_server, type="a", name="new.test", port=a.port)) == []
    assert await served_by(gw) == "b"  # the new config resolved before it served
    with trio.fail_after(10):
        while not all(t.pool.closed for t in old.targets):  # the old generation retired (after its tasks)
            await trio.sleep(0.05)
        old_gen_queries = dns_server.count("old.test", "A")
        asked = dns_server.count("new.test", "A")
        while dns_server.count("new.test", "A") < asked + 3:  # the new name is asked again and again...
            await trio.sleep(0.05)
    # ...and the old one no more once its generation retired (no request was in flight)
    assert dns_server.count("old.test", "A") == old_gen_queries


# --------------------------------------------------------------------------- IPv6 (AAAA), gateway resolvers, Host


def echo_host(name: str) -> Any:
    async def handler(req: Any) -> Response:
        return Response.json({"served_by": name, "host": req.headers.get("host")})
    return handler


async def test_family_ipv6_asks_aaaa_and_serves_from_an_ipv6_upstream(dns_server, upstream_factory, gateway_factory):
    v6 = await upstream_factory(named("v6"), host="::1")
    dns_server.set("svc.test", "AAAA", ["::1"], ttl=30)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=30)  # not asked: family is ipv6
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=v6.port, family="ipv6"))
    assert [t.url for t in gw.gateway.upstreams["u"].targets] == [f"http://[::1]:{v6.port}"]
    assert {await served_by(gw) for _ in range(3)} == {"v6"}
    assert dns_server.count("svc.test", "AAAA") >= 1 and dns_server.count("svc.test", "A") == 0


async def test_family_ipv4_is_the_default_and_asks_no_aaaa(dns_server, upstream_factory, gateway_factory):
    a = await upstream_factory(named("v4"), host="127.0.0.2")
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=30)
    dns_server.set("svc.test", "AAAA", ["::1"], ttl=30)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=a.port))
    assert [t.url for t in gw.gateway.upstreams["u"].targets] == [f"http://127.0.0.2:{a.port}"]
    assert dns_server.count("svc.test", "AAAA") == 0


async def test_family_both_makes_every_a_and_aaaa_address_a_target(dns_server, upstream_factory, gateway_factory):
    v4 = await upstream_factory(named("v4"), host="127.0.0.2")
    await upstream_factory(named("v6"), host="::1", port=v4.port)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=30)
    dns_server.set("svc.test", "AAAA", ["::1"], ttl=30)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=v4.port, family="both"))
    assert sorted(t.url for t in gw.gateway.upstreams["u"].targets) == [
        f"http://127.0.0.2:{v4.port}", f"http://[::1]:{v4.port}"]
    assert Counter([await served_by(gw) for _ in range(4)]) == {"v4": 2, "v6": 2}


async def test_family_both_with_one_family_missing_uses_the_other(dns_server, upstream_factory, gateway_factory):
    """A name with A records only (AAAA: no records) is no failure with family "both"; the TTL
    is the answered one's, and an AAAA record added later joins when it expires."""
    v4 = await upstream_factory(named("v4"), host="127.0.0.2")
    v6 = await upstream_factory(named("v6"), host="::1", port=v4.port)
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=1)
    gw = await gateway_factory(discovery_config(dns_server, type="a", name="svc.test", port=v4.port, family="both"))
    up = gw.gateway.upstreams["u"]
    assert [t.url for t in up.targets] == [f"http://127.0.0.2:{v4.port}"]
    dns_server.set("svc.test", "AAAA", ["::1"], ttl=1)
    with trio.fail_after(5):
        while len(up.targets) < 2:
            await trio.sleep(0.05)
    assert {await served_by(gw) for _ in range(4)} == {"v4", "v6"}
    assert v6.requests


async def test_srv_with_family_ipv6_uses_aaaa_glue_and_lookups(dns_server, upstream_factory, gateway_factory):
    one = await upstream_factory(named("one"), host="::1")
    two = await upstream_factory(named("two"), host="::1")
    dns_server.set("_http._tcp.svc.test", "SRV", [f"0 0 {one.port} one.svc.test.", f"0 0 {two.port} two.svc.test."])
    dns_server.set("one.svc.test", "AAAA", ["::1"])
    dns_server.set("one.svc.test", "A", ["127.0.0.9"])  # glue of the other family: not used
    dns_server.set("two.svc.test", "AAAA", ["::1"])
    dns_server.glue = False  # two is looked up by an AAAA query...
    gw = await gateway_factory(discovery_config(dns_server, type="srv", name="_http._tcp.svc.test", family="ipv6"))
    assert sorted(t.url for t in gw.gateway.upstreams["u"].targets) == sorted(
        [f"http://[::1]:{one.port}", f"http://[::1]:{two.port}"])
    assert Counter([await served_by(gw) for _ in range(4)]) == {"one": 2, "two": 2}
    assert dns_server.count("two.svc.test", "AAAA") >= 1 and dns_server.count("two.svc.test", "A") == 0


async def test_system_resolver_with_family_ipv6(upstream_factory, gateway_factory):
    """getaddrinfo asked for AF_INET6 only (here for the literal ::1: the sandbox's /etc/hosts has no
    IPv6 name)."""
    up = await upstream_factory(named("v6"), host="::1")
    gw = await gateway_factory({
        "upstreams": {"u": {"discovery": {"type": "a", "name": "::1", "port": up.port, "family": "ipv6"}}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    })
    assert [t.url for t in gw.gateway.upstreams["u"].targets] == [f"http://[::1]:{up.port}"]
    assert await served_by(gw) == "v6"


async def test_gateway_resolvers_serve_every_discovery_table_without_its_own(dns_server, upstream_factory,
                                                                              gateway_factory):
    a = await upstream_factory(named("a"), host="127.0.0.2")
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=30)
    gw = await gateway_factory({
        "gateway": {"resolvers": [dns_server.address]},
        "upstreams": {
            "u": {"discovery": {"type": "a", "name": "svc.test", "port": a.port, "min_ttl": 0.05, "timeout": 0.5}},
            "own": {"discovery": {"type": "a", "name": "svc.test", "port": a.port, "resolvers": ["127.0.0.1:9"],
                                  "timeout": 0.2, "interval": 60}},
            "system": {"discovery": {"type": "a", "name": "localhost", "port": a.port, "resolvers": [],
                                     "interval": 60}},
        },
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    })
    ups = gw.gateway.upstreams
    assert await served_by(gw) == "a"
    assert ups["u"].discovery.resolvers == [dns_server.address]
    assert ups["own"].discovery.resolvers == ["127.0.0.1:9"] and ups["own"].targets == []
    # resolvers = [] is the system resolver, whatever gateway.resolvers says
    assert [t.url for t in ups["system"].targets] == [f"http://127.0.0.1:{a.port}"]
    assert dns_server.count("localhost", "A") == 0


def test_gateway_resolvers_are_checked():
    with pytest.raises(ConfigError) as exc:
        parse_config({"gateway": {"resolvers": ["dns.example:53"]}})
    assert 'gateway.resolvers[0]: expected "ip:port" of a DNS server' in str(exc.value)


async def test_host_sent_to_a_discovered_target_is_its_dns_name(dns_server, upstream_factory, gateway_factory):
    """As for a static target (the URL's host): the name, with the port; not the address."""
    up = await upstream_factory(echo_host("a"), host="127.0.0.2")
    static = await upstream_factory(echo_host("static"))
    dns_server.set("svc.test", "A", ["127.0.0.2"], ttl=30)
    cfg = discovery_config(dns_server, type="a", name="svc.test.", port=up.port)
    cfg["upstreams"]["s"] = {"targets": [{"url": f"http://localhost:{static.port}"}]}
    cfg["routes"].update({
        "static": {"paths": ["/static"], "upstream": "s"},
        "kept": {"paths": ["/kept"], "upstream": "u", "preserve_host": True},
        "set": {"paths": ["/set"], "upstream": "u", "host_header": "vhost.example"},
    })
    gw = await gateway_factory(cfg)
    assert (await gw.client.get("/")).json()["host"] == f"svc.test:{up.port}"
    assert (await gw.client.get("/static")).json()["host"] == f"localhost:{static.port}"
    kept = await gw.client.get("/kept", headers={"host": "api.example"})
    assert kept.json()["host"] == "api.example"
    assert (await gw.client.get("/set")).json()["host"] == "vhost.example"
    # the address stays what the target is called in logs, metrics and /upstreams
    assert [t.url for t in gw.gateway.upstreams["u"].targets] == [f"http://127.0.0.2:{up.port}"]


async def test_host_sent_to_an_srv_target_is_the_records_host(dns_server, upstream_factory, gateway_factory):
    up = await upstream_factory(echo_host("one"))
    dns_server.set("_http._tcp.svc.test", "SRV", [f"0 0 {up.port} one.svc.test."])
    dns_server.set("one.svc.test", "A", ["127.0.0.1"])
    gw = await gateway_factory(discovery_config(dns_server, type="srv", name="_http._tcp.svc.test"))
    assert (await gw.client.get("/")).json()["host"] == f"one.svc.test:{up.port}"
