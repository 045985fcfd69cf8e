"""The plugin base class, the hookimpl marker and the config-field helper."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pluggy

if TYPE_CHECKING:
    from .context import GatewayServices

__all__ = ["NoConfig", "Plugin", "hookimpl", "setting"]

hookimpl = pluggy.HookimplMarker("triogate")


def setting(
    default: Any = attrs.NOTHING, *, description: str, factory: Any = None, secret: bool = False, **kwargs: Any,
) -> Any:
    """An attrs field with the one-line description that docs and ``triogate schema`` show.

    ``secret=True`` marks a value that must never be shown (a password, an HMAC key, a client
    secret, a token): ``triogate diff``, the admin API's dry run and
    :func:`triogate.mask_secrets` show a mask instead (:mod:`triogate.masking`).
    """
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["description"] = description
    if secret:
        metadata["secret"] = True
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata, **kwargs)
    return attrs.field(default=default, metadata=metadata, **kwargs)


@attrs.define(frozen=True)
class NoConfig:
    """For plugins without settings."""


class Plugin:
    """Base class for plugins: one instance per configured use (global or per route).

    Subclasses declare ``Config`` (an attrs class whose fields use :func:`setting`),
    ``priority`` (higher runs earlier; Kong-like bands: request-id/cors/ip ~2000,
    auth 1000-1500, rate limits ~900, transforms ~800, cache ~100, aggregate ~50)
    and implement hooks as methods marked with ``@hookimpl``.
    """

    name: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    Config: ClassVar[type] = NoConfig
    #: True makes the core time every hook call of a config that uses this plugin, into
    #: ``ctx.hook_timings`` for the requests where a hook set it to a list (tracing plugins)
    wants_hook_timings: ClassVar[bool] = False
    #: True for plugins that answer every request of their route themselves (aggregate): a route
    #: with such an instance needs no upstream, and ``triogate check`` does not warn that it has none
    answers_requests: ClassVar[bool] = False
    #: keys of this plugin's consumer credential tables (``[consumers.<n>.credentials.<plugin>]``, at
    #: any depth) whose values are secrets, masked by ``triogate diff``; None (the default, the safe
    #: guess for a plugin that does not say) masks every value of them
    credential_secrets: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: Any, gateway: GatewayServices, route: str | None = None) -> None:
        self.config = config
        self.gateway = gateway
        self.route = route

    def identity_headers(self) -> Iterable[str]:
        """Request headers this instance asserts to the upstream (e.g. ``claims_to_headers`` targets).

        The core asks once per config load and removes every header any instance declares
        from each client request at admission, before any plugin runs, so a client can neither
        send a copy nor remove the asserted one by naming it in ``Connection``. The core's
        consumer headers (``triogate.auth.IDENTITY_HEADERS``, ``x-consumer-*``) need no
        declaration. Names of fields clients legitimately send (``authorization``, ``host``,
        hop-by-hop fields) are a config error.
        """
        return ()

    def request_header_names(self) -> Iterable[tuple[str, str]]:
        """``(config key, header name)`` of the client request headers this instance reads.

        ``triogate check`` flags names that can never arrive: with a ``_`` while
        ``gateway.underscores_in_headers`` drops or rejects such headers, or identity headers
        the core removes. ``key`` is relative to the instance's table (``"key_names[0]"``).
        """
        return ()

    @property
    def instance_name(self) -> str:
        return f"{self.name}@{self.route or '*'}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance_name}>"
