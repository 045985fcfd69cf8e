"""Test kit for triogate and its plugins: a pytest plugin (``pytest11`` entry point).

Everything runs for real on loopback: a gateway started from a config dict or
TOML string on a free port, programmable upstream servers that record what they
receive, and a client bound to the gateway.

Fixtures (pytest-trio, in :mod:`.fixtures`):

- ``upstream``: a started :class:`UpstreamServer` that echoes each request as JSON.
- ``upstream_factory``: ``await upstream_factory(handler=None)`` starts another one.
- ``gateway_factory``: ``await gateway_factory(config, plugins={...}, hooks=[module])``
  returns a :class:`RunningGateway` (``.url``, ``.client``, ``.reload()``).
- ``plugin_registry``: an empty plugin registry to register into (``registry=`` of the factory).
- ``identity_provider``: a started :class:`IdentityProvider` (JWKS, OIDC discovery, introspection;
  needs ``pip install 'triogate[testing-idp]'``).
- ``redis_server``: a real ``redis-server`` on a free port (needs the binary).
- ``redis_cluster`` (module-scoped): a real 3-primary + 3-replica :class:`RedisCluster` on loopback
  (needs ``redis-server`` and ``redis-cli``), with ``failover``/``kill_primary``/``restart``.
- ``redis_sentinel`` (module-scoped): a real :class:`RedisSentinel` (1 primary, 1 replica,
  3 sentinels) with ``failover``.
- from pytest-trio: ``nursery``, ``autojump_clock`` and ``mock_clock`` (the gateway, fixture
  upstreams and the client share the test's trio run, so they all follow the virtual clock).

Helpers: :class:`Browser` (keeps cookies and follows redirects hop by hop, for login flows),
:func:`load_gateway` (load and validate a config without serving it),
:func:`plugin_config` (schema tests), :func:`readme_is_current` (the README's config table),
:func:`raw_request`, :func:`start_gateway`,
:func:`free_port`, :class:`ResetConnection`, :class:`GatewayProcess` (``triogate run`` in a
child process, for signals, workers and pid files). Every fixture with an example: docs/testing.md.

Submodules, one job each: :mod:`.gateway` (a gateway in the test's nursery, or only loaded),
:mod:`.client`, :mod:`.browser`, :mod:`.fixtures`, :mod:`.idp` (the identity provider), :mod:`.redis`
(``redis-server``), :mod:`.process` (``triogate run`` as a child process), :mod:`.readme`,
:mod:`.pki` (a throw-away CA and :func:`~.pki.tls_request` for mutual-TLS tests; import it from there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..devserver import ResetConnection, UpstreamServer, echo_handler, free_port
from .browser import PAGE_HEADERS, Browser
from .client import GatewayClient, raw_request
from .fixtures import (
    gateway_factory,
    identity_provider,
    plugin_registry,
    redis_cluster,
    redis_sentinel,
    redis_server,
    upstream,
    upstream_factory,
)
from .gateway import RunningGateway, load_gateway, plugin_config, start_gateway
from .process import GatewayProcess
from .readme import readme_is_current
from .redis import RedisCluster, RedisReplyError, RedisSentinel, RedisServer, key_slot, redis_command

if TYPE_CHECKING:
    from .idp import IdentityProvider as IdentityProvider
    from .idp import IdPKey as IdPKey

# IdentityProvider and IdPKey are importable from here too (``__getattr__`` below) but are not in
# ``__all__``: they need the ``testing-idp`` extra, and ``import *`` must not need it.
__all__ = [
    "PAGE_HEADERS", "Browser", "GatewayClient", "GatewayProcess", "RedisCluster", "RedisReplyError", "RedisSentinel", "RedisServer",
    "ResetConnection", "RunningGateway", "UpstreamServer",
    "echo_handler", "free_port", "key_slot", "load_gateway", "plugin_config", "raw_request", "readme_is_current",
    "redis_command", "start_gateway",
]

# the fixtures are attributes of this module so that the ``pytest11`` entry point registers them
_FIXTURES = (gateway_factory, identity_provider, plugin_registry, redis_cluster, redis_sentinel, redis_server, upstream,
             upstream_factory)

_NEEDS_IDP_EXTRA = ("IdentityProvider", "IdPKey")


def __getattr__(name: str) -> Any:
    """Import the identity provider on first use, so only its users need PyJWT and cryptography."""
    if name in _NEEDS_IDP_EXTRA:
        from . import idp

        return getattr(idp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
