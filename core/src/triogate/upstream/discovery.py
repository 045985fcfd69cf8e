"""DNS service discovery: an upstream's targets from A/AAAA or SRV records (``[upstreams.<name>.discovery]``).

:func:`resolve` asks the configured resolvers (dnspython's async resolver on trio: each record's
TTL is known) or the system resolver (``getaddrinfo`` in a worker thread: no TTL, so a fixed
interval). :func:`run_discovery` re-resolves for as long as the config generation runs and hands
each good answer to the upstream, which keeps the targets that stay, adds the new ones and drains
the removed ones. Nothing here runs at config load: ``triogate check`` does no DNS.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import trio

__all__ = ["DiscoveryError", "Endpoint", "resolve", "run_discovery", "srv_weights"]

log = logging.getLogger("triogate")

#: the address records each ``family`` asks for (Envoy's dns_lookup_family V4_ONLY, V6_ONLY, ALL)
RECORD_TYPES = {"ipv4": ("A",), "ipv6": ("AAAA",), "both": ("A", "AAAA")}
_SOCKET_FAMILY = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6, "both": socket.AF_UNSPEC}


@attrs.frozen
class Endpoint:
    """One discovered address: becomes one target (its own pool, health and circuit breaker)."""

    address: str
    port: int
    weight: int = 1
    priority: int = 0
    server_name: str | None = None  # the DNS name the address was found under (TLS SNI and verification)


class DiscoveryError(Exception):
    """The name did not resolve to any usable address (NXDOMAIN, no records, resolver down or slow)."""


class NoRecords(DiscoveryError):
    """The server answered: no such name, or no records of the type asked (with ``family = "both"``,
    the other type may still have some)."""


def _resolver(cfg: Any) -> dns.asyncresolver.Resolver:
    if cfg.resolvers:
        r = dns.asyncresolver.Resolver(configure=False)
        servers = []
        for address in cfg.resolvers:
            host, _, port = address.rpartition(":")
            servers.append(dns.nameserver.Do53Nameserver(host.strip("[]"), int(port)))
        r.nameservers = servers
    else:
        r = dns.asyncresolver.Resolver()  # /etc/resolv.conf (a file read, at run time only)
    r.lifetime = cfg.timeout
    r.timeout = cfg.timeout
    return r


async def _query(r: dns.asyncresolver.Resolver, name: str | dns.name.Name, rdtype: str) -> dns.resolver.Answer:
    try:
        return await r.resolve(name, rdtype, backend=dns.asyncbackend.get_backend("trio"), search=False)
    except dns.resolver.NXDOMAIN:
        raise NoRecords(f"{name}: no such name (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        raise NoRecords(f"{name}: no {rdtype} records") from None
    except dns.resolver.LifetimeTimeout:
        raise DiscoveryError(f"{name}: no answer from {_servers(r)} within {r.lifetime} s") from None
    except dns.resolver.NoNameservers as exc:
        raise DiscoveryError(f"{name}: every resolver failed ({exc})") from None
    except dns.exception.DNSException as exc:
        raise DiscoveryError(f"{name}: {type(exc).__name__}: {exc}") from None


async def _addresses(r: dns.asyncresolver.Resolver, name: str | dns.name.Name,
                     family: str) -> tuple[list[str], float]:
    """The addresses of ``name`` in ``family`` (A and AAAA asked at once for "both") and their TTL.

    With "both", a type without records is fine when the other has some; any other failure
    (a timeout, SERVFAIL) fails the whole answer, so the last known addresses stay.
    """
    rdtypes = RECORD_TYPES[family]
    answers: dict[str, dns.resolver.Answer | DiscoveryError] = {}

    async def one(rdtype: str) -> None:
        try:
            answers[rdtype] = await _query(r, name, rdtype)
        except DiscoveryError as exc:
            answers[rdtype] = exc

    async with trio.open_nursery() as nursery:
        for rdtype in rdtypes:
            nursery.start_soon(one, rdtype)
    found: set[str] = set()
    ttls: list[float] = []
    empty: list[str] = []
    for rdtype in rdtypes:
        got = answers[rdtype]
        if isinstance(got, NoRecords):
            empty.append(str(got))
        elif isinstance(got, DiscoveryError):
            raise got
        else:
            found.update(rr.address for rr in got)
            ttls.append(float(got.rrset.ttl))
    if not found:
        raise NoRecords("; ".join(dict.fromkeys(empty)))
    return sorted(found), min(ttls)


def _servers(r: dns.asyncresolver.Resolver) -> str:
    return ", ".join(f"{ns.address}:{ns.port}" if hasattr(ns, "port") else str(ns) for ns in r.nameservers)


def srv_weights(weights: list[int]) -> list[int]:
    """SRV weights (0..65535) of one priority as target weights.

    All 0 ("no preference", RFC 2782) → 1 each; otherwise scaled down so the largest is at most 100
    (a consistent-hash ring has 160 points per unit of weight), a non-zero weight staying at least 1;
    a 0 among non-zero weights stays 0: that target takes no traffic (HAProxy's reading).
    """
    top = max(weights, default=0)
    if top == 0:
        return [1] * len(weights)
    if top <= 100:
        return list(weights)
    return [0 if w == 0 else max(1, round(w * 100 / top)) for w in weights]


async def resolve(cfg: Any) -> tuple[list[Endpoint], float | None]:
    """The endpoints ``cfg`` (a discovery table) names now, and the TTL of the answer (None: unknown).

    Raises :class:`DiscoveryError` when there is none.
    """
    if cfg.type == "a":
        if not cfg.resolvers:
            return await _system_a(cfg), None
        found, ttl = await _addresses(_resolver(cfg), cfg.name, cfg.family)
        return [Endpoint(a, cfg.port, cfg.weight, 0, cfg.name.rstrip(".")) for a in found], ttl
    return await _srv(cfg)


async def _system_a(cfg: Any) -> list[Endpoint]:
    try:
        infos = await trio.socket.getaddrinfo(cfg.name, cfg.port, _SOCKET_FAMILY[cfg.family], socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DiscoveryError(f"{cfg.name}: {exc.strerror}") from None
    # an IPv6 address from getaddrinfo may carry a zone ("fe80::1%eth0"): keep it, the socket needs it
    found = sorted({info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)})
    if not found:
        raise DiscoveryError(f"{cfg.name}: no addresses")
    return [Endpoint(a, cfg.port, cfg.weight, 0, cfg.name.rstrip(".")) for a in found]


async def _srv(cfg: Any) -> tuple[list[Endpoint], float]:
    r = _resolver(cfg)
    answer = await _query(r, cfg.name, "SRV")
    ttl = float(answer.rrset.ttl)
    # addresses the server sent along (Consul and CoreDNS do), else A/AAAA queries per target name
    wanted = {dns.rdatatype.from_text(t) for t in RECORD_TYPES[cfg.family]}
    glue: dict[dns.name.Name, list[str]] = {}
    for rrset in answer.response.additional:
        if rrset.rdtype in wanted:
            glue.setdefault(rrset.name, []).extend(rr.address for rr in rrset)
            ttl = min(ttl, float(rrset.ttl))
    records = [rr for rr in answer if rr.target != dns.name.root]  # target "." = "not offered here"
    if not records:
        raise DiscoveryError(f"{cfg.name}: the SRV records say the service is not available")
    by_priority: dict[int, list[Any]] = {}
    for rr in records:
        by_priority.setdefault(rr.priority, []).append(rr)
    # the hosts without addresses in the answer: their A (and/or AAAA) queries, all at once
    lookups: dict[dns.name.Name, list[str] | str] = {}
    ttls: list[float] = []

    async def lookup(host: dns.name.Name) -> None:
        try:
            addresses, host_ttl = await _addresses(r, host, cfg.family)
        except DiscoveryError as exc:
            lookups[host] = str(exc)
            return
        lookups[host] = addresses
        ttls.append(host_ttl)

    async with trio.open_nursery() as nursery:
        for host in {rr.target for rr in records if rr.target not in glue}:
            nursery.start_soon(lookup, host)
    ttl = min([ttl, *ttls])
    found: list[Endpoint] = []
    failures: list[str] = []
    for priority in sorted(by_priority):
        group = by_priority[priority]
        for rr, weight in zip(group, srv_weights([rr.weight for rr in group]), strict=True):
            addresses = glue.get(rr.target) or lookups.get(rr.target)
            if isinstance(addresses, str) or not addresses:
                failures.append(addresses if isinstance(addresses, str) else f"{rr.target}: no addresses")
                continue
            host = rr.target.to_text(omit_final_dot=True)
            found.extend(Endpoint(addr, rr.port, weight, priority, host) for addr in sorted(set(addresses)))
    if not found:
        raise DiscoveryError("; ".join(failures) or f"{cfg.name}: no addresses for the SRV targets")
    for f in failures:
        log.warning("discovery %s: an SRV target does not resolve, left out: %s", cfg.name, f)
    return found, ttl


def next_delay(cfg: Any, ttl: float | None) -> float:
    """When to resolve again after a good answer: its TTL within [min_ttl, max_ttl], or ``interval``."""
    if ttl is None:
        return cfg.interval
    return min(max(ttl, cfg.min_ttl), cfg.max_ttl)


async def run_discovery(
    label: str, cfg: Any, apply: Callable[[list[Endpoint]], Awaitable[None]],
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Resolve ``cfg`` and ``apply`` each good answer, forever; ``started`` after the first attempt.

    A failure (resolver down, NXDOMAIN, no records, a timeout) keeps what was applied last and is
    retried after ``cfg.interval``; it is logged, once per change of the error, and never raises.
    """
    started = False
    last_error: str | None = None
    have = False
    while True:
        delay = cfg.interval
        try:
            with trio.fail_after(cfg.timeout * 2):  # the resolver's own lifetime, and then some
                found, ttl = await resolve(cfg)
        except trio.TooSlowError:
            error: str | None = f"{cfg.name}: no answer within {cfg.timeout} s"
        except DiscoveryError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("%s: discovery of %s failed", label, cfg.name)
            error = f"{cfg.name}: {type(exc).__name__}: {exc}"
        else:
            error = None
            delay = next_delay(cfg, ttl)
            try:
                await apply(found)
                have = True
            except Exception:
                log.exception("%s: applying the addresses of %s failed", label, cfg.name)
        if error is not None:
            keep = "keeping the last known addresses" if have else "no address yet: requests get 503"
            if error != last_error:
                log.warning("%s: DNS discovery failed (%s); %s; retrying every %s s", label, error, keep, cfg.interval)
            else:
                log.debug("%s: DNS discovery still failing (%s)", label, error)
        elif last_error is not None:
            log.info("%s: DNS discovery of %s works again", label, cfg.name)
        last_error = error
        if not started:
            started = True
            task_status.started()
        await trio.sleep(delay)
