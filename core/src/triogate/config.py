"""gateway.toml: attrs models, strict structuring with cattrs, `${ENV}` interpolation.

Every error is reported with the file, the key path and what was expected;
:class:`ConfigError` carries the whole list so ``triogate check`` can print all
of them at once.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from . import fields
from .fields import FieldError, FieldErrors, at_least, check, duration, duration_or_zero, join_keys, key_path
from .plugin import setting
from .tlsfiles import TLSFileError, client_context, server_context
from .tomltext import describe as _describe
from .tomltext import toml_repr as _toml_repr

__all__ = [
    "LISTEN_ADDRESS_PATTERN",
    "MIN_TOKEN_LENGTH",
    "AdminConfig",
    "Config",
    "ConfigError",
    "ConsumerConfig",
    "DiscoveryConfig",
    "GatewayConfig",
    "ListenerConfig",
    "PathsConfig",
    "PluginTables",
    "RouteConfig",
    "TargetConfig",
    "UpstreamConfig",
    "UpstreamTLSConfig",
    "check_admin",
    "converter",
    "format_errors",
    "load_config",
    "parse_config",
    "structure",
]


class ConfigError(Exception):
    """Invalid configuration: ``errors`` is a list of ``"key.path: message"`` strings."""

    def __init__(self, errors: list[str], source: str = "<config>") -> None:
        self.errors = errors
        self.source = source
        super().__init__("\n".join(f"{source}: {e}" for e in errors))


# --------------------------------------------------------------------------- models


def _address_problems(inst: Any, name: str, value: str) -> typing.Iterator[tuple[str, str]]:
    try:
        _, port = split_hostport(value)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        yield "", f'expected "host:port" (e.g. "127.0.0.1:8000"), got {value!r}'


def _tls_pair(inst: Any, name: str, value: str | None) -> typing.Iterator[tuple[str, str]]:
    if bool(inst.tls_cert) != bool(inst.tls_key):
        yield "", "tls_cert and tls_key go together (set both or neither)"


#: what :func:`split_hostport` accepts with a port of 0-65535 (for ``triogate schema``)
LISTEN_ADDRESS_PATTERN = rf"^(\[[^\]]*\]:*|.*:)?0*{fields.PORT_PATTERN}$"


def _client_auth_problems(inst: Any, name: str, value: str) -> typing.Iterator[tuple[str, str]]:
    if value == "none":
        for key in ("client_ca", "client_crl"):
            if getattr(inst, key) is not None:
                yield key, 'has no effect with client_auth = "none": set client_auth to "optional" or "required"'
        return
    if not inst.tls_cert:
        yield name, f"{value!r} needs TLS on the listener (tls_cert and tls_key)"
    if not inst.client_ca:
        yield "client_ca", f"client_auth = {value!r} needs client_ca, the CA bundle client certificates must chain to"
    if value == "optional" and inst.protocol == "h2":
        yield name, ('"optional" is not offered on h2 listeners: HTTP/2 requests cannot show the certificate to '
                   'plugins (hypercorn exposes none); use "required" or an http1 listener')


@attrs.define(frozen=True)
class ListenerConfig:
    address: str = setting(
        description="host:port to listen on ([::1]:8000 for IPv6)",
        validator=fields.Check(_address_problems, schema={"pattern": LISTEN_ADDRESS_PATTERN}))
    protocol: Literal["http1", "h2"] = setting(
        "http1", description="http1: native HTTP/1.1 listener; h2: HTTP/2 (h2c prior knowledge or TLS ALPN) "
                             "through hypercorn, and HTTP/1.1 on the same port through the native listener")
    tls_cert: str | None = setting(
        None, description="PEM certificate chain file; enables TLS", validator=fields.Check(_tls_pair))
    tls_key: str | None = setting(None, description="PEM private key file")
    client_auth: Literal["none", "optional", "required"] = setting(
        "none", description="mutual TLS: none; optional (the handshake asks for a client certificate, none is "
        "fine and plugins such as mtls-auth decide per route, an invalid one fails the handshake); required "
        "(no valid client certificate, no handshake). h2 listeners offer none and required",
        validator=fields.Check(_client_auth_problems))
    client_ca: str | None = setting(
        None, description="PEM bundle of the CAs whose client certificates are accepted (needed unless client_auth = none)")
    client_crl: str | None = setting(
        None, description="PEM certificate revocation list checked against client certificates (the leaf); "
                          "reloads with the config")

    @property
    def host(self) -> str:
        return split_hostport(self.address)[0]

    @property
    def port(self) -> int:
        return split_hostport(self.address)[1]


def split_hostport(address: str) -> tuple[str, int]:
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":"))
    host, _, port = address.rpartition(":")
    return host, int(port)


@attrs.define(frozen=True)
class LimitsConfig:
    max_request_line: int = setting(
        8192, description="longest request target in bytes (414 beyond)", validator=at_least(0))
    max_header_bytes: int = setting(
        32768, description="largest request head in bytes (431 beyond)", validator=at_least(0))
    max_headers: int = setting(
        100, description="most header fields in a request (431 beyond)", validator=at_least(0))
    max_body_bytes: int = setting(
        100 * 1024 * 1024, description="largest request body in bytes, 0 for no limit (413 beyond)",
        validator=at_least(0))
    body_buffer_bytes: int = setting(
        65536, description="request body bytes read before an upstream is contacted; smaller bodies arrive whole "
        "(and can be retried), larger ones stream after that", validator=at_least(0))
    min_body_rate: int = setting(
        8192, description="bytes per second a request body must average while the gateway waits for it, after "
        "timeouts.body_rate_grace; 0 for no minimum (408 below it)", validator=at_least(0))
    max_connections: int = setting(
        4096, description="open client connections per listener (per worker); beyond it idle keep-alive ones are "
        "closed, else new ones wait in the kernel's backlog; 0 for no cap", validator=at_least(0))
    h2_max_concurrent_streams: int = setting(
        100, description="HTTP/2: most streams a client may have open on one connection "
                         "(SETTINGS_MAX_CONCURRENT_STREAMS)")
    h2_max_resets_per_second: int = setting(
        100, description="HTTP/2: RST_STREAM frames per second a client may send on one connection before "
                         "GOAWAY(ENHANCE_YOUR_CALM) ends it (rapid reset)")
    h2_max_small_data_frames_per_second: int = setting(
        1000, description="HTTP/2: DATA frames under 1 KiB that do not end their stream a client may send per "
                          "second on one connection before GOAWAY(ENHANCE_YOUR_CALM) ends it (tiny-frame floods; "
                          "also more than 10 empty ones in a row); 0 for no limit", validator=at_least(0))
    h2_max_control_frames_per_second: int = setting(
        1000, description="HTTP/2: PING, SETTINGS, PRIORITY, WINDOW_UPDATE and unknown-type frames a client may send "
                          "per second on one connection before GOAWAY(ENHANCE_YOUR_CALM) ends it (WINDOW_UPDATEs "
                          "answering the gateway's DATA frames are not counted); 0 for no limit", validator=at_least(0))


@attrs.define(frozen=True)
class PathsConfig:
    encoded_slash: Literal["reject", "keep"] = setting(
        "reject", description='%2F or %5C in a path: "reject" (400), or "keep" (matched as part of one segment and '
        "forwarded encoded: only safe when no upstream decodes them before routing)")
    trailing_dot: Literal["reject", "keep"] = setting(
        "reject", description='a path segment ending in "." (/admin./x): "reject" (400), or "keep" (forwarded as is: '
        "only safe when no upstream strips trailing dots)")


@attrs.define(frozen=True)
class TimeoutsConfig:
    header: float = setting(10.0, description="seconds to receive a whole request head", validator=duration)
    idle: float = setting(
        60.0, description="seconds a keep-alive connection may wait for its next request", validator=duration)
    body: float = setting(60.0, description="seconds between two reads of a request body", validator=duration)
    request_body: float = setting(
        300.0, description="seconds a whole request body may take, from its first read to its end (408 beyond)",
        validator=duration)
    body_rate_grace: float = setting(
        5.0, description="seconds of waiting for a request body before limits.min_body_rate applies",
        validator=duration_or_zero)
    send: float = setting(60.0, description="seconds between two writes to a client", validator=duration)
    drain: float = setting(
        30.0, description="seconds in-flight requests get to finish on shutdown or reload", validator=duration)
    startup: float = setting(
        30.0, description="seconds the plugins' startup hooks get before the start (or reload) fails", validator=duration)
    shutdown: float = setting(
        10.0, description="seconds the plugins' shutdown hooks get (they run concurrently)", validator=duration)
    tunnel_idle: float = setting(
        300.0, description="seconds an upgraded (WebSocket) connection may pass no bytes either way before it is closed",
        validator=duration)


def _unique_addresses(inst: Any, name: str, value: list[ListenerConfig]) -> typing.Iterator[tuple[str, str]]:
    seen: dict[str, int] = {}
    for i, lst in enumerate(value):
        try:
            _, port = split_hostport(lst.address)
        except ValueError:
            continue
        if lst.address in seen and port != 0:
            yield key_path(name, i), f"{lst.address!r} is already gateway.listen[{seen[lst.address]}]"
        seen[lst.address] = i


def _resolvers_problems(inst: Any, name: str, value: list[str] | None) -> typing.Iterator[tuple[str, str]]:
    for i, address in enumerate(value or ()):
        try:
            host, port = split_hostport(address)
            ipaddress.ip_address(host.strip("[]"))
            if not 0 < port <= 65535:
                raise ValueError
        except ValueError:
            yield key_path(name, i), f'expected "ip:port" of a DNS server (e.g. "10.96.0.10:53"), got {address!r}'


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@attrs.define(frozen=True)
class GatewayConfig:
    listen: list[ListenerConfig] = setting(
        factory=lambda: [ListenerConfig("127.0.0.1:8000")],
        description='addresses to listen on: "host:port" strings or tables with protocol and TLS',
        validator=fields.Check(_unique_addresses))
    workers: int = setting(
        1, description="worker processes sharing the listening sockets", validator=at_least(1, show_value=True))
    watch: bool = setting(
        False, description="reload when this file or a file it references (hooks, TLS files) changes, "
        "like triogate run --watch")
    hooks: list[str] = setting(
        factory=list, description="local hook modules (paths or module names), registered like plugins",
        validator=fields.Check(lambda inst, name, value: [
            (key_path(name, i), "expected a file path or a module name, got an empty string")
            for i, spec in enumerate(value) if not spec]))
    limits: LimitsConfig = setting(factory=LimitsConfig, description="request size limits")
    paths: PathsConfig = setting(
        factory=PathsConfig, description="paths that upstreams may read differently from the router")
    timeouts: TimeoutsConfig = setting(factory=TimeoutsConfig, description="client-side timeouts")
    trusted_proxies: list[str] = setting(
        factory=list, description="CIDRs whose X-Forwarded-*/Forwarded headers are believed", validator=fields.cidrs())
    forwarded_headers: Literal["x-forwarded", "forwarded", "both", "none"] = setting(
        "x-forwarded", description="which forwarding headers are sent upstream")
    via: bool = setting(True, description="add a Via header to forwarded requests and responses")
    underscores_in_headers: Literal["drop", "allow", "reject"] = setting(
        "drop", description='request header names with "_" (X_User_Id): drop them (nginx\'s default), allow them, '
        "or reject the request with 400; look-alikes of identity headers are dropped in every mode")
    request_id_header: str = setting(
        "x-request-id", description="header carrying the request id", validator=fields.header_name)
    access_log: str = setting("-", description='access log destination: "-" for stdout, a file path, or "off"')
    access_log_format: Literal["json", "console"] = setting(
        "json", description="json: one JSON object per line; console: one human-readable line per request")
    access_log_headers: list[str] = setting(
        factory=list, description="request headers to add to each access log line (secrets in them are redacted)",
        validator=fields.header_names)
    log_level: str = setting(
        "info", description="level of the gateway's own log",
        validator=check(lambda v: v.lower() in _LOG_LEVELS, "one of " + ", ".join(f'"{n}"' for n in _LOG_LEVELS)))
    plugins_on_error: Literal["fail", "skip"] = setting(
        "fail", description="a plugin that fails to load or has an incompatible triogate: refuse to start, or skip it")
    resolvers: list[str] = setting(
        factory=list, description='DNS servers ("ip:port") of every upstream discovery table that sets no '
        "resolvers of its own; empty: the system resolver", validator=fields.Check(_resolvers_problems))
    http1_parser: Literal["auto", "fast", "h11"] = setting(
        "auto", description='HTTP/1.1 parser of the listener and the upstream client: "fast" (llhttp, the '
        'triogate[fast] extra), "h11" (the reference), '
        '"auto" (fast when installed; $TRIOGATE_HTTP1_PARSER overrides)')


def _is_hostport(value: str) -> bool:
    try:
        split_hostport(value)
    except ValueError:
        return False
    return True


@attrs.define(frozen=True)
class AdminConfig:
    listen: str | None = setting(
        None, description="host:port of the admin API (loopback); unset disables it",
        validator=check(_is_hostport, '"host:port"'))
    token: str | None = setting(
        None, description="bearer token required by the admin API, at least 16 characters (use ${ENV})", secret=True)
    allow_remote: bool = setting(
        False, description="allow a non-loopback admin listen address (e.g. for Kubernetes probes)")


#: the shortest ``[admin] token`` the admin listener accepts
MIN_TOKEN_LENGTH = 16


def check_admin(admin: AdminConfig) -> list[str]:
    """Errors that keep the admin listener from starting: no token, a non-loopback address not allowed."""
    if admin.listen is None:
        return []
    try:
        host, _ = split_hostport(admin.listen)
    except ValueError:
        return []  # reported by the config's own address check
    errors = []
    if not admin.token or len(admin.token) < MIN_TOKEN_LENGTH:
        errors.append(f"admin.token: a token of at least {MIN_TOKEN_LENGTH} characters is required"
                      " when admin.listen is set")
    if not admin.allow_remote and not is_loopback(host):
        errors.append(f"admin.listen: {host!r} is not a loopback address;"
                      " set admin.allow_remote = true to listen there")
    return errors


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.define(frozen=True)
class TargetConfig:
    url: str = setting(
        description="http://host:port or https://host:port of one upstream server", validator=fields.origin_url)
    weight: int = setting(1, description="relative share of traffic (0 takes none)", validator=at_least(0, show_value=True))


@attrs.define(frozen=True)
class HealthCheckConfig:
    path: str | None = setting(None, description="path probed with GET; unset disables active checks", validator=fields.path)
    interval: float = setting(10.0, description="seconds between probes", validator=duration)
    timeout: float = setting(2.0, description="seconds a probe may take", validator=duration)
    healthy_threshold: int = setting(2, description="consecutive successes that mark a target healthy")
    unhealthy_threshold: int = setting(3, description="consecutive failures that mark a target unhealthy")
    healthy_statuses: list[int] = setting(
        factory=lambda: list(range(200, 400)), description="statuses that count as success")


@attrs.define(frozen=True)
class CircuitBreakerConfig:
    failures: int = setting(5, description="consecutive failures that open the circuit (0 disables)")
    open_seconds: float = setting(10.0, description="seconds the circuit stays open before a half-open probe")
    failure_statuses: list[int] = setting(
        factory=lambda: [502, 503, 504], description="upstream statuses that count as failures")


def _targets_problems(inst: Any, name: str, value: list[TargetConfig]) -> typing.Iterator[tuple[str, str]]:
    if inst.discovery is not None:
        if value:
            yield name, "set either targets or discovery, not both (discovery makes the targets)"
    elif not value:
        yield name, "expected at least one target (or a discovery table)"
    elif all(t.weight == 0 for t in value):
        yield name, "every target has weight 0, so none would get traffic"


def _discovery_port(inst: Any, name: str, value: int | None) -> typing.Iterator[tuple[str, str]]:
    if inst.type == "a" and value is None:
        yield name, 'required with type = "a" (the port every address serves on)'
    elif inst.type == "srv" and value is not None:
        yield name, 'not used with type = "srv" (each SRV record carries its port)'
    elif value is not None and not 0 < value <= 65535:
        yield name, f"expected a port from 1 to 65535, got {value}"


def _ttl_bounds(inst: Any, name: str, value: float) -> typing.Iterator[tuple[str, str]]:
    if inst.min_ttl > value:
        yield name, f"must be at least min_ttl ({inst.min_ttl}), got {value}"


@attrs.define(frozen=True)
class DiscoveryConfig:
    type: Literal["a", "srv"] = setting(
        description='"a": every address record (A/AAAA, see family) of name is a target on port; "srv": SRV '
        "records of name give each target's host, port, priority and weight")
    name: str = setting(
        description='DNS name to resolve (e.g. "users.default.svc.cluster.local" or '
        '"_http._tcp.users.service.consul")',
        validator=check(lambda v: bool(v.strip(". ")) and " " not in v, "a DNS name"))
    port: int | None = setting(None, description='port of every address (type "a"; SRV records carry their own)',
                               validator=fields.Check(_discovery_port))
    scheme: Literal["http", "https"] = setting("http", description="scheme of the discovered targets")
    weight: int = setting(1, description='weight of each address (type "a"; SRV records carry their own)',
                          validator=at_least(1, show_value=True))
    family: Literal["ipv4", "ipv6", "both"] = setting(
        "ipv4", description='address records asked: "ipv4" (A), "ipv6" (AAAA) or "both" (A and AAAA, every '
        "address a target)")
    resolvers: list[str] | None = setting(
        None, description='DNS servers as "ip:port"; unset: gateway.resolvers; empty (or both unset): the system '
        "resolver (getaddrinfo for \"a\", /etc/resolv.conf's servers for \"srv\")",
        validator=fields.Check(_resolvers_problems))
    min_ttl: float = setting(5.0, description="floor on a record's TTL: re-resolve at most this often",
                             validator=duration)
    max_ttl: float = setting(300.0, description="ceiling on a record's TTL: re-resolve at least this often",
                             validator=[duration, fields.Check(_ttl_bounds)])
    interval: float = setting(
        10.0, description="seconds between resolutions when no TTL is known (the system resolver), and "
        "before retrying a failed one", validator=duration)
    timeout: float = setting(2.0, description="seconds one resolution may take (all resolvers tried)",
                             validator=duration)


def _hash_on_ok(value: str) -> bool:
    if value.startswith("header:"):
        return fields.is_header_name(value[7:])
    return value in ("client-ip", "path") or (value.startswith("cookie:") and len(value) > 7)


@attrs.define(frozen=True)
class UpstreamTLSConfig:
    ca: str | None = setting(
        None, description="PEM CA bundle that verifies https:// targets, instead of the system trust store "
        "(a relative path is relative to the config file)")
    cert: str | None = setting(
        None, description="PEM client certificate (chain) the gateway presents to the upstream: upstream mTLS")
    key: str | None = setting(None, description="PEM private key of cert (unset: cert's file holds it), unencrypted")
    server_name: str | None = setting(
        None, description="name sent as SNI and verified in the certificate; unset: the target's host")
    verify: bool = setting(True, description="verify the upstream's certificate and name (false: accept any)")


@attrs.define(frozen=True)
class UpstreamConfig:
    targets: list[TargetConfig] = setting(
        factory=list, description="servers behind this upstream (or a discovery table)",
        validator=fields.Check(_targets_problems))
    discovery: DiscoveryConfig | None = setting(
        None, description="targets from DNS (A or SRV records), re-resolved as their TTL expires: docs/discovery.md")
    balancer: Literal["round-robin", "weighted", "least-connections", "consistent-hash"] = setting(
        "round-robin", description="how a target is chosen (round-robin honours weights too)")
    hash_on: str = setting(
        "client-ip", description='consistent-hash key: "client-ip", "header:<name>", "cookie:<name>" or "path"',
        validator=check(_hash_on_ok, '"client-ip", "path", "header:<name>" or "cookie:<name>"'))
    max_connections: int = setting(256, description="most open connections per target", validator=at_least(1))
    max_idle: int = setting(64, description="most idle keep-alive connections kept per target", validator=at_least(0))
    idle_timeout: float = setting(30.0, description="seconds an idle upstream connection is kept", validator=duration)
    connect_timeout: float = setting(5.0, description="seconds to connect (504 beyond)", validator=duration)
    read_timeout: float = setting(
        60.0, description="seconds between two reads from the upstream (504 beyond)", validator=duration)
    write_timeout: float = setting(
        60.0, description="seconds between two writes to the upstream (504 beyond)", validator=duration)
    retries: int = setting(
        1, description="extra attempts on another target, for idempotent methods or connect failures",
        validator=at_least(0))
    retry_budget: float = setting(
        0.2, description="retries may add at most this fraction of the upstream's requests (on top of min_retries_per_second)",
        validator=at_least(0))
    min_retries_per_second: float = setting(
        10.0, description="retries always allowed per second, whatever the budget (so low traffic can still retry)",
        validator=at_least(0))
    pool_timeout: float | None = setting(
        None, description="seconds a request waits for a free connection when max_connections are busy (503 beyond); "
        "unset: connect_timeout", validator=duration)
    tls: UpstreamTLSConfig = setting(
        factory=UpstreamTLSConfig, description="TLS to https:// targets: trust, client certificate, server name")
    tls_verify: bool | None = setting(None, description="deprecated: use tls.verify")
    health_check: HealthCheckConfig = setting(factory=HealthCheckConfig, description="active health checks")
    circuit_breaker: CircuitBreakerConfig = setting(
        factory=CircuitBreakerConfig, description="passive health: consecutive failures open a circuit")

    @property
    def https(self) -> bool:
        """Does any target (static or discovered) speak https?"""
        if self.discovery is not None:
            return self.discovery.scheme == "https"
        return any(t.url.lower().startswith("https://") for t in self.targets)

    @property
    def tls_settings(self) -> UpstreamTLSConfig:
        """The ``tls`` table with the deprecated ``tls_verify`` folded in (setting both is a config error)."""
        if self.tls_verify is None:
            return self.tls
        return attrs.evolve(self.tls, verify=self.tls_verify)

    def deprecations(self, at: str) -> list[str]:
        """Deprecated keys this upstream (at key path ``at``) uses, as warnings for check and load."""
        if self.tls_verify is None:
            return []
        value = "true" if self.tls_verify else "false"
        return [f"{at}.tls_verify is deprecated and will be removed: write {at}.tls.verify = {value} instead"]


_ROUTE_PATH = re.compile(r"(/([^/{}]*|\{[A-Za-z_][A-Za-z0-9_]*\}))*/?")
# a route path for ``triogate schema``: _ROUTE_PATH without '*', then an optional trailing /*
_ROUTE_PATH_PATTERN = r"^(?=/)(/([^/{}*]*|\{[A-Za-z_][A-Za-z0-9_]*\}))*(/\*?)?$"
_ROUTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PROTOCOL = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?")


_WILDCARD_HELP = ("a path is a prefix already (/svc matches /svc and everything below it; /svc/* means the same), "
                  "a segment can be a parameter (/users/{id}/orders), and path_match = \"exact\" matches one path only")


def _route_paths(inst: Any, name: str, value: list[str]) -> typing.Iterator[tuple[str, str]]:
    for i, p in enumerate(value):
        if "*" in p[:-2] or (p.endswith("*") and not p.endswith("/*")):
            yield key_path(name, i), f"'*' is only allowed as a trailing /* (a prefix), got {p!r}: {_WILDCARD_HELP}"
        elif not p.startswith("/"):
            yield key_path(name, i), f"expected a path starting with /, got {p!r}"
        elif p.endswith("/*") and inst.path_match == "exact":
            yield key_path(name, i), (f'{p!r} ends in /* (a prefix), but path_match = "exact": '
                                      f"drop the /* or the path_match")
        elif not _ROUTE_PATH.fullmatch(p):
            yield key_path(name, i), f"a parameter must be a whole segment like /users/{{id}}, got {p!r}"


def _segments_can_match(prefix: str, pattern: str, exact: bool) -> bool:
    """Whether some request path matched by route path ``pattern`` starts with ``prefix`` (segment-wise)."""
    strip = [s for s in prefix.split("/") if s]
    pat = [s for s in pattern.removesuffix("/*").split("/") if s]  # /svc/* is the prefix /svc
    for i, seg in enumerate(strip):
        if i >= len(pat):
            return not exact  # a prefix route matches deeper paths too
        if pat[i] != seg and not _ROUTE_PARAM.fullmatch(pat[i]):
            return False
    return True


def _strip_prefix(inst: Any, name: str, value: str | None) -> typing.Iterator[tuple[str, str]]:
    if value is None:
        return
    if not value.startswith("/"):
        yield name, f"expected a path starting with /, got {value!r}"
        return
    if not inst.paths:
        return  # the route matches every path
    exact = inst.path_match == "exact"
    ci = inst.case_insensitive
    if not any(_segments_can_match(value.lower() if ci else value, p.lower() if ci else p, exact) for p in inst.paths):
        listed = ", ".join(repr(p) for p in inst.paths)
        yield name, (f"{value!r} is not a prefix of any path this route matches ({listed}), "
                     "so it would never be stripped")


def _rewrite(inst: Any, name: str, value: str | None) -> typing.Iterator[tuple[str, str]]:
    if value is None:
        return
    if not value.startswith("/"):
        yield name, f"expected a path starting with /, got {value!r}"
    params = {n for p in inst.paths for n in _ROUTE_PARAM.findall(p)} | {"rest"}
    for used in re.findall(r"\{([^}]*)\}", value):
        if used not in params:
            yield name, (f"{{{used}}} is not a parameter of this route's paths"
                         f" (available: {', '.join(sorted(params))})")
    if inst.strip_prefix is not None:
        yield "", "strip_prefix and rewrite cannot both be set"


def _upgrades(inst: Any, name: str, value: list[str]) -> typing.Iterator[tuple[str, str]]:
    for i, proto in enumerate(value):
        token = proto.partition("/")[0].strip().lower()
        if token == "h2c":
            yield key_path(name, i), ("h2c is never tunnelled (RFC 9113 §3.1: an HTTP/2 tunnel would "
                                      "reach every path of the upstream past routing and auth)")
        elif not _PROTOCOL.fullmatch(proto):
            yield key_path(name, i), f'expected a protocol token like "websocket", got {proto!r}'


@attrs.define(frozen=True)
class RouteConfig:
    paths: list[str] = setting(
        factory=list, description="path prefixes or templates (/users/{id}); a trailing /* is another spelling of "
        "the prefix (/svc/* = /svc); empty matches every path",
        validator=fields.Check(_route_paths, items={"pattern": _ROUTE_PATH_PATTERN}))
    path_match: Literal["prefix", "exact"] = setting("prefix", description="prefix: the path and anything below it; exact: only it")
    case_insensitive: bool = setting(
        False, description="match paths regardless of case (the upstream must treat case the same way)")
    allow_matrix_params: bool = setting(
        False, description='accept ";" path parameters (/a;v=1/b): matched without them, forwarded with them')
    hosts: list[str] = setting(factory=list, description="Host values (*.example.com wildcards); empty matches any")
    methods: list[str] = setting(factory=list, description="methods; empty matches any", validator=fields.method_names)
    headers: dict[str, str] = setting(factory=dict, description="header values that must match exactly")
    upstream: str | None = setting(None, description="upstream to forward to (a plugin may answer instead)")
    strip_prefix: str | None = setting(
        None, description="prefix removed from the path before forwarding; must be a prefix of the paths the route "
        "matches", validator=fields.Check(_strip_prefix, schema={"pattern": "^/"}))
    rewrite: str | None = setting(
        None, description="path template for the upstream: {param} and {rest} are filled in",
        validator=fields.Check(_rewrite))
    preserve_host: bool = setting(False, description="forward the client's Host instead of the target's")
    host_header: str | None = setting(None, description="Host to send upstream (overrides preserve_host)")
    upgrades: list[str] = setting(
        factory=lambda: ["websocket"], description='Upgrade protocols tunnelled to the upstream (case-insensitive); '
        '[] disables; others are stripped and the request is forwarded as a plain one; h2c is never allowed',
        validator=fields.Check(_upgrades))
    plugins: dict[str, dict[str, Any]] = setting(
        factory=dict, description="plugin instances for this route", metadata={"secret_leaves": True})
    priorities: dict[str, int] = setting(factory=dict, description="override plugin priorities on this route")


@attrs.define(frozen=True)
class ConsumerConfig:
    groups: list[str] = setting(factory=list, description="groups for acl and per-group policies")
    custom_id: str | None = setting(None, description="an id from another system, forwarded as-is")
    credentials: dict[str, Any] = setting(
        factory=dict, description="per-plugin credentials, keyed by plugin name (key-auth, basic-auth, jwt)",
        metadata={"secret_leaves": True})


@attrs.define(frozen=True)
class Config:
    gateway: GatewayConfig = setting(factory=GatewayConfig, description="listeners, workers, limits and timeouts")
    admin: AdminConfig = setting(factory=AdminConfig, description="the admin API")
    upstreams: dict[str, UpstreamConfig] = setting(factory=dict, description="named upstream services")
    routes: dict[str, RouteConfig] = setting(factory=dict, description="named routes")
    plugins: dict[str, dict[str, Any]] = setting(
        factory=dict, description="global plugin instances", metadata={"secret_leaves": True})
    consumers: dict[str, ConsumerConfig] = setting(factory=dict, description="API consumers and their credentials")
    source: str = attrs.field(default="<config>", metadata={"internal": True})


# --------------------------------------------------------------------------- strict converter


def _strict(tp: type) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not tp:
            raise TypeError(f"expected {_type_name(tp)}, got {_describe(value)}")
        return value

    return hook


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "an array", dict: "a table"}.get(tp, getattr(tp, "__name__", str(tp)))


def _literal_hook(tp: Any) -> Any:
    allowed = typing.get_args(tp)
    expected = ", ".join(_toml_repr(a) for a in allowed)

    def hook(value: Any, _: Any) -> Any:
        for a in allowed:
            if type(value) is type(a) and value == a:
                return a
        raise ValueError(f"expected one of {expected}, got {_describe(value)}")

    return hook


def _guarded(kind: type, build: Any) -> Any:
    """Wrap a generated hook so the wrong TOML type is an error, never a coercion."""

    def factory(cl: Any) -> Any:
        inner = build(cl)

        def hook(value: Any, t: Any) -> Any:
            if not isinstance(value, kind):
                raise TypeError(f"expected {_type_name(kind)}, got {_describe(value)}")
            return inner(value, t)

        return hook

    return factory


def make_converter() -> cattrs.Converter:
    """The strict converter: wrong TOML types and unknown keys are errors, never coerced or ignored."""
    from cattrs.cols import list_structure_factory
    from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn

    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for tp in (str, int, float, bool):
        conv.register_structure_hook(tp, _strict(tp))
    conv.register_structure_hook(Any, lambda value, _: value)
    conv.register_structure_hook_factory(lambda cl: typing.get_origin(cl) is Literal, _literal_hook)
    conv.register_structure_hook_factory(
        lambda cl: typing.get_origin(cl) is list, _guarded(list, lambda cl: list_structure_factory(cl, conv)))
    conv.register_structure_hook_factory(
        lambda cl: typing.get_origin(cl) is dict, _guarded(dict, lambda cl: make_mapping_structure_fn(cl, conv)))
    conv.register_structure_hook_factory(
        lambda cl: attrs.has(cl) and cl is not ListenerConfig,
        _guarded(dict, lambda cl: _checked(make_dict_structure_fn(
            cl, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True))))
    attrs_listener = make_dict_structure_fn(
        ListenerConfig, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True)

    def listener_hook(value: Any, t: Any) -> ListenerConfig:
        if isinstance(value, str):
            value = {"address": value}
        if not isinstance(value, dict):
            raise TypeError(f'expected "host:port" or a table, got {_describe(value)}')
        return attrs_listener(value, t)

    conv.register_structure_hook(ListenerConfig, listener_hook)
    return conv


def _checked(build: Any) -> Any:
    """Run the :mod:`~triogate.fields` checks of a whole table at once, not the first failing one.

    The outermost table is built with the checks deferred, then every check of it and of the
    tables in it runs, so each bad value is reported with its key path.
    """

    def hook(value: Any, t: Any) -> Any:
        if fields.is_deferred():
            return build(value, t)
        with fields.deferred():
            obj = build(value, t)
        problems = fields.problems(obj)
        if problems:
            raise FieldErrors(problems)
        return obj

    return hook


converter = make_converter()
_path_join = key_path


def _unknown_key(path: str, key: str, cl: Any) -> str:
    import difflib

    known = [f.name for f in attrs.fields(cl) if not f.metadata.get("internal")] if attrs.has(cl) else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif known:
        hint = "expected one of " + ", ".join(known)
    else:
        hint = "this table takes no keys"
    return f"{_path_join(path, key)}: unknown key ({hint})"


def format_errors(exc: BaseException, path: str = "") -> list[str]:
    """Flatten a cattrs validation error tree into ``key.path: message`` lines."""
    out: list[str] = []
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step = getattr(note, "name", None)
            if step is None:
                step = getattr(note, "index", None)
            if isinstance(sub, KeyError) and step is not None and sub.args and sub.args[0] == step:
                step = None  # the KeyError names the missing key itself
            out.extend(format_errors(sub, _path_join(path, step) if step is not None else path))
        for sub in without:
            out.extend(format_errors(sub, path))
        return out
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            out.append(_unknown_key(path, key, exc.cl))
        return out
    if isinstance(exc, KeyError):
        out.append(f"{_path_join(path, exc.args[0])}: required key missing")
        return out
    if isinstance(exc, FieldErrors):
        for sub in exc.errors:
            out.extend(format_errors(sub, path))
        return out
    if isinstance(exc, FieldError):
        out.append(f"{join_keys(path, exc.key) or '<root>'}: {exc.message}")
        return out
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, (TypeError, ValueError)) and not msg.startswith("expected") and not path:
        msg = f"invalid value: {msg}"
    out.append(f"{path or '<root>'}: {msg}")
    return out


def structure(data: Any, cls: type, path: str = "") -> Any:
    """Structure ``data`` into ``cls`` strictly; raise ConfigError with key paths.

    A ``ValueError``/``TypeError`` raised by the class itself (cross-field checks in
    ``__attrs_post_init__``) is reported at ``path``.
    """
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a keyed message
        raise ConfigError(format_errors(exc, path)) from None


# --------------------------------------------------------------------------- loading


class PluginTables(typing.Protocol):
    """What :func:`parse_config` needs to check plugin tables: the plugin registry
    (:class:`~triogate.plugins.PluginRegistry`) provides it. The registry sits above the
    config models, so the config receives it rather than importing it."""

    def check_plugin_tables(self, cfg: Config, raw: dict[str, Any] | None = None) -> list[str]:
        """Key-pathed errors of every plugin table of ``cfg`` (``raw``: the TOML dict)."""
        ...


# One scan finds every `${`: the escape `$${`, a valid placeholder, or anything else (an error:
# a typo like `${TOKEN-x}` must not silently become the literal text of a secret).
_ENV_RE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z0-9_]*)(.?)(.?))", re.DOTALL)
_PLACEHOLDER_HELP = "expected ${NAME} or ${NAME:-default} (NAME: letters, digits, _; not starting with a digit); write $${ for a literal ${"


def _malformed(m: re.Match[str]) -> str:
    """What is wrong with a ``${`` that starts no valid placeholder, showing only the text up to the
    fault: what follows may be a secret (``${TOKEN-s3cret}``), and this message reaches logs."""
    name, fault, more = m.group(3), m.group(4), m.group(5)
    if name and name[0].isdigit():
        shown, why = "${" + name[0] + "…", "a variable name cannot start with a digit"
    elif not fault:
        shown, why = "${" + name, "no closing }"
    elif fault == ":" and more == "-":
        shown, why = "${" + name + ":-…", "no closing }"
    elif not name:
        shown, why = "${" + fault + ("…" if more else ""), "no variable name"
    else:
        shown, why = "${" + name + fault + ("…" if more else ""), f"{fault!r} cannot follow a variable name"
    return f"{shown!r} ({why})"


def interpolate(value: Any, path: str, errors: list[str], env: typing.Mapping[str, str]) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string; ``$${`` is a literal ``${``.

    Any other ``${`` (``${X-default}``, ``${UNCLOSED``, ``${}``) is an error at ``path``.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            text = m.group(0)
            if text == "$${":
                return "${"
            name, default = m.group(1), m.group(2)
            if name is None:
                errors.append(f"{path}: malformed placeholder {_malformed(m)}: {_PLACEHOLDER_HELP}")
                return text
            if name in env:
                return env[name]
            if default is not None:
                return default
            errors.append(f"{path}: environment variable {name} is not set"
                          f" (set it, or give a default: ${{{name}:-default}})")
            return ""

        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, _path_join(path, k), errors, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{path}[{i}]", errors, env) for i, v in enumerate(value)]
    return value


_KEYED_SECTIONS = ("upstreams", "routes", "consumers", "plugins")


def parse_config(
    raw: dict[str, Any],
    source: str = "<config>",
    env: typing.Mapping[str, str] | None = None,
    registry: PluginTables | None = None,
) -> Config:
    """Validate a raw TOML dict and return a :class:`Config`.

    Every section, and every named upstream, route, consumer and plugin table, is
    checked on its own, so one mistake does not hide the others; then references
    (route → upstream, paths, URLs) are checked. With a ``registry``
    (a :class:`~triogate.plugins.PluginRegistry`, or anything with its
    ``check_plugin_tables``: see :class:`PluginTables`) each plugin table is validated
    against its plugin's ``Config`` too. All errors are raised together.
    """
    errors: list[str] = []
    raw = interpolate(raw, "", errors, os.environ if env is None else env)
    placeholder_errors = len(errors)
    hints = typing.get_type_hints(Config)
    fields = {f.name: f for f in attrs.fields(Config) if not f.metadata.get("internal")}
    for key in raw:
        if key not in fields:
            errors.append(_unknown_key("", key, Config))
    parts: dict[str, Any] = {}
    for name in fields:
        if name not in raw:
            continue
        value, tp = raw[name], hints[name]
        if name in _KEYED_SECTIONS:
            if not isinstance(value, dict):
                errors.append(f"{name}: expected a table of named {name}, got {_describe(value)}")
                continue
            item_tp = typing.get_args(tp)[1]
            entries = {}
            for key, item in value.items():
                entry = _structure_checked(item, item_tp, _path_join(name, key), errors)
                if entry is not None:
                    entries[key] = entry
            parts[name] = entries
        else:
            section = _structure_checked(value, tp, name, errors)
            if section is not None:
                parts[name] = section
    cfg = Config(**parts, source=source)
    errors.extend(_check_references(cfg, raw))
    if registry is not None:
        errors.extend(registry.check_plugin_tables(cfg, raw))
    if errors:
        # a value with a missing or malformed ${VAR} is reported once, not again as a malformed value
        unset = {e.split(": ", 1)[0] for e in errors[:placeholder_errors]}
        errors = errors[:placeholder_errors] + [e for e in errors[placeholder_errors:]
                                                if e.split(": ", 1)[0] not in unset]
        raise ConfigError(list(dict.fromkeys(errors)), source)
    return cfg


def _structure_checked(value: Any, tp: Any, path: str, errors: list[str]) -> Any:
    """One table (or section) structured and checked; its errors go to ``errors``.

    A table whose values fail their checks is still returned, so the cross-reference checks
    see what was written rather than defaults.
    """
    try:
        with fields.deferred():
            obj = converter.structure(value, tp)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a keyed message
        errors.extend(format_errors(exc, path))
        return None
    errors.extend(format_errors(FieldErrors(fields.problems(obj)), path))
    return obj


def _check_references(cfg: Config, raw: dict[str, Any] | None = None) -> list[str]:
    """Checks across tables (a route's upstream, the gateway's path and header policy) and of files.

    What one table can check by itself is declared on its model with :mod:`triogate.fields`.
    """
    raw = raw or {}
    declared_upstreams = set(raw.get("upstreams") or {}) if isinstance(raw.get("upstreams"), dict) else set()
    declared_upstreams |= set(cfg.upstreams)
    errors: list[str] = []
    for i, lst in enumerate(cfg.gateway.listen):
        missing = False
        for key in ("tls_cert", "tls_key"):
            value = getattr(lst, key)
            if value and not Path(value).is_file():
                errors.append(f"gateway.listen[{i}].{key}: no such file: {value!r}")
                missing = True
        if lst.tls_cert and lst.tls_key and not missing:
            # built for real (certificate and key loaded, CA and CRL parsed), as the listener will on its next
            # connection after this reload: a broken or mismatched file refuses the reload with its key path
            # instead of being applied and then ignored by the listener (which keeps its previous context)
            try:
                server_context(lst.tls_cert, lst.tls_key, ["http/1.1"], client_auth=lst.client_auth,
                               client_ca=lst.client_ca, client_crl=lst.client_crl)
            except TLSFileError as exc:
                errors.append(f"gateway.listen[{i}].{exc.field}: {exc}")

    errors.extend(check_admin(cfg.admin))  # the admin listener: a token, loopback unless allowed
    for name, up in cfg.upstreams.items():
        at = _path_join("upstreams", name)
        raw_up = (raw.get("upstreams") or {}).get(name) if isinstance(raw.get("upstreams"), dict) else None
        raw_tls = raw_up.get("tls") if isinstance(raw_up, dict) else None
        errors.extend(_check_upstream_tls(up, at, raw_tls if isinstance(raw_tls, dict) else {}, cfg.source))
    for name, route in cfg.routes.items():
        at = _path_join("routes", name)
        if route.upstream is not None and route.upstream not in declared_upstreams:
            known = ", ".join(sorted(declared_upstreams)) or "none defined"
            errors.append(f"{at}.upstream: unknown upstream {route.upstream!r} (known: {known})")
        for i, p in enumerate(route.paths):
            if problem := _unmatchable_path(p, cfg.gateway.paths, route.allow_matrix_params):
                errors.append(f"{at}.paths[{i}]: {problem}, so {p!r} can never match")
        if cfg.gateway.underscores_in_headers != "allow":
            for header in route.headers:
                if "_" in header:
                    errors.append(underscore_error(f"{at}.headers.{header}", header, cfg.gateway.underscores_in_headers))
    if cfg.gateway.underscores_in_headers != "allow":
        mode = cfg.gateway.underscores_in_headers
        for i, header in enumerate(cfg.gateway.access_log_headers):
            if "_" in header:
                errors.append(underscore_error(f"gateway.access_log_headers[{i}]", header, mode))
        for name, up in cfg.upstreams.items():
            if up.hash_on.startswith("header:") and "_" in up.hash_on:
                errors.append(underscore_error(f"{_path_join('upstreams', name)}.hash_on", up.hash_on[7:], mode))
    return errors


def _check_upstream_tls(up: UpstreamConfig, at: str, raw_tls: dict[str, Any], source: str) -> list[str]:
    """An upstream's ``tls`` table: consistent keys, then its SSLContext built for real, so a bad CA,
    certificate or key file is an error here (with its key path), not a failed request later."""
    import ipaddress


    errors: list[str] = []
    tls = up.tls_settings
    if up.tls_verify is not None and "verify" in raw_tls:
        errors.append(f"{at}.tls_verify: deprecated alias of {at}.tls.verify, and both are set: keep only tls.verify")
    https = up.https
    if up.tls != UpstreamTLSConfig() and not https:
        errors.append(f"{at}.tls: applies to https:// targets only, and this upstream has none")
    if tls.key and not tls.cert:
        errors.append(f"{at}.tls.key: a key needs tls.cert, the client certificate it belongs to")
    if tls.ca and not tls.verify:
        errors.append(f"{at}.tls.ca: has no effect when verification is off (tls.verify = false): "
                      "remove one of them")
    if tls.server_name is not None:
        name = tls.server_name
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if not re.fullmatch(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?", name):
                errors.append(f"{at}.tls.server_name: expected a host name or IP address (no scheme or port), "
                              f"got {name!r}")
    for key in ("ca", "cert", "key"):
        if getattr(tls, key) == "":
            errors.append(f"{at}.tls.{key}: expected a file path, got an empty string")
    if errors or not https:
        return errors
    base = Path(source).parent if source and not source.startswith("<") else Path.cwd()
    try:
        client_context(tls, base)
    except TLSFileError as exc:
        errors.append(f"{at}.tls.{exc.field}: {exc}")
    return errors


def _unmatchable_path(pattern: str, paths: PathsConfig, matrix: bool) -> str | None:
    """Why a route path is one that the path policy refuses (or strips) before routing, if it is."""
    if ";" in pattern or "%3b" in pattern.lower():
        return "routes are matched without ';' path parameters" + ("" if matrix else " (and refuse them)")
    if paths.encoded_slash == "reject" and ("%2f" in pattern.lower() or "%5c" in pattern.lower()):
        return "encoded slashes are refused (gateway.paths.encoded_slash)"
    if paths.trailing_dot == "reject" and any(s.endswith(".") and s not in (".", "..") for s in pattern.split("/")):
        return "path segments ending in '.' are refused (gateway.paths.trailing_dot)"
    return None


def underscore_error(key: str, header: str, mode: str) -> str:
    """The config error for a request header name that can never arrive: it contains ``_``."""
    verb = "dropped" if mode == "drop" else "refused with 400"
    return (f"{key}: header {header!r} contains \"_\", and such request headers are {verb} "
            f'(gateway.underscores_in_headers = "{mode}"), so it would never match; use "-" or set it to "allow"')


def load_config(
    path: str | os.PathLike[str], env: typing.Mapping[str, str] | None = None, registry: PluginTables | None = None,
) -> Config:
    """Read and validate a gateway.toml file (plugin tables too when a ``registry`` is given)."""
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror}"], source) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], source) from None
    cfg = parse_config(raw, source, env, registry)
    return attrs.evolve(cfg, source=str(p.resolve()))


def loads_config(
    text: str, source: str = "<string>", env: typing.Mapping[str, str] | None = None,
    registry: PluginTables | None = None,
) -> Config:
    """Parse and validate gateway.toml text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], source) from None
    return parse_config(raw, source, env, registry)
