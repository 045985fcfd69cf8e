"""The request authority, normalized once per request.

Routing, cache keys and the ``Host`` / ``X-Forwarded-Host`` sent upstream all use the
same value, so a variant an upstream or a cache would read as another origin
(``Example.COM.``, ``example.com:80``, ``example.com:6666``) can neither reach a route
it should not nor share a cache entry with the plain form.
"""

from __future__ import annotations

__all__ = ["DEFAULT_PORTS", "normalize_authority"]

#: the port a scheme implies; an authority naming it is the same origin without it (RFC 3986 §6.2.3)
DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_authority(value: str, scheme: str) -> tuple[str, str]:
    """``(host, authority)`` of a ``Host`` value: lower-case, no trailing dot, no default port.

    ``host`` is what host-bound routes match (no port; IPv6 literals keep their brackets);
    ``authority`` is ``host`` plus any port other than the scheme's default, and is what the
    cache keys on and what the upstream is told. The listener has already refused malformed
    values; whatever reaches here is normalized, never rejected.
    """
    if not value:
        return "", ""
    v = value.lower()
    if v[0] == "[":
        end = v.find("]")
        if end < 0:
            return v, v
        host, port = v[:end + 1], v[end + 2:]
    else:
        host, sep, port = v.rpartition(":")
        if not sep:
            host, port = v, ""
        if host.endswith("."):
            host = host.rstrip(".")
    if not port:
        return host, host
    if port[0] == "0" and port.isdigit():
        port = str(int(port))  # "080" is port 80
    if port == DEFAULT_PORTS.get(scheme):
        return host, host
    return host, host + ":" + port
