"""``RedisConfig``: where Redis is and how patiently to talk to it (a nested table in plugin configs)."""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs
from triogate import setting

__all__ = ["RedisConfig", "parse_hostport"]

_SCHEMES = ("redis", "rediss", "unix")


def parse_hostport(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:6379"`` for IPv6) → ``(host, port)``; ValueError when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


@attrs.define(frozen=True)
class RedisConfig:
    """One Redis deployment: standalone (``url``), Sentinel (``sentinels``) or Cluster (``cluster_nodes``)."""

    url: str = setting(
        "redis://127.0.0.1:6379/0",
        description="standalone server: redis://[user:password@]host:port/db, rediss:// for TLS, unix:///path; "
                    "in sentinel/cluster mode only its credentials, db and TLS are used",
    )
    sentinels: list[str] = setting(
        factory=list, description='Sentinel nodes ["host:port", ...]; when set, the primary of `sentinel_service` is used')
    sentinel_service: str = setting("mymaster", description="the service (master) name the sentinels monitor")
    cluster_nodes: list[str] = setting(
        factory=list, description='Redis Cluster startup nodes ["host:port", ...]; when set, cluster mode is used')
    connect_timeout: float = setting(1.0, description="seconds to establish a connection")
    timeout: float = setting(0.5, description="seconds for one command or script; slower counts as Redis unavailable")
    health_check_interval: float = setting(
        1.0, description="seconds between health PINGs; also the longest pause between reconnect attempts")
    max_connections: int = setting(32, description="connection pool size per gateway process")
    key_prefix: str = setting("triogate:", description="prefix of every key this gateway writes")

    def __attrs_post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"url: scheme must be one of {', '.join(s + '://' for s in _SCHEMES)}, got {self.url!r}")
        if parts.scheme != "unix" and not parts.hostname and not (self.sentinels or self.cluster_nodes):
            raise ValueError(f"url: no host in {self.url!r}")
        if self.sentinels and self.cluster_nodes:
            raise ValueError("sentinels and cluster_nodes are mutually exclusive")
        if (self.sentinels or self.cluster_nodes) and parts.scheme == "unix":
            raise ValueError("url: unix:// cannot be combined with sentinels or cluster_nodes")
        for field in ("sentinels", "cluster_nodes"):
            for node in getattr(self, field):
                try:
                    parse_hostport(node)
                except ValueError as exc:
                    raise ValueError(f"{field}: {exc}") from None
        if self.sentinels and not self.sentinel_service:
            raise ValueError("sentinel_service: required with sentinels")
        for field in ("connect_timeout", "timeout", "health_check_interval"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field}: must be > 0")
        if self.max_connections < 1:
            raise ValueError("max_connections: must be >= 1")

    @property
    def mode(self) -> str:
        """``"standalone"``, ``"sentinel"`` or ``"cluster"``."""
        if self.cluster_nodes:
            return "cluster"
        if self.sentinels:
            return "sentinel"
        return "standalone"

    @property
    def identity(self) -> tuple[object, ...]:
        """A hashable key: two equal configs share one connection pool."""
        return tuple(tuple(v) if isinstance(v, list) else v for v in attrs.astuple(self, recurse=False))

    def describe(self) -> str:
        """Where this points, without credentials (for logs)."""
        if self.mode == "cluster":
            return "cluster " + ",".join(self.cluster_nodes)
        if self.mode == "sentinel":
            return f"sentinel {self.sentinel_service}@" + ",".join(self.sentinels)
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return f"{parts.scheme}://{netloc}{parts.path}"
