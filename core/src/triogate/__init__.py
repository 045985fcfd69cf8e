"""triogate: an API gateway for Python people.

The public API for plugin authors is what this module exports, plus
``triogate.fields`` (checks for config fields: header names, URLs, CIDRs, paths, durations,
the token location), ``triogate.template`` (config value templates: ``/users/{id}``, ``{principal.sub}``,
safe encodings), ``triogate.auth`` (the conventions that make several auth plugins on
one route an OR: anonymous fallback, the auth-failed marker, consumer headers, bearer
tokens), ``triogate.jwks`` (JWT verification keys, cached JWK Sets and OpenID provider discovery,
shared by the jwt and oidc plugins) and ``triogate.testing`` for tests; everything else is internal.
"""

from . import fields as fields  # triogate.fields: checks for config fields
from ._version import __version__
from .admin import AdminRoute
from .app import Gateway, StartupError
from .clientcert import ClientCert
from .config import Config, ConfigError, load_config, loads_config
from .context import Context, GatewayServices
from .counters import Counter
from .headers import Headers
from .masking import mask_secrets
from .messages import Body, BodyTooLarge, Principal, Request, Response
from .plugin import NoConfig, Plugin, hookimpl, setting
from .problem import GatewayError, problem
from .resources import Scope, SharedResourceError
from .runtime import Runtime, TargetState
from .serving import serve
from .upstream import Fetched, HTTPClient, UpstreamError, UpstreamTimeout

__all__ = [
    "AdminRoute", "Body", "BodyTooLarge", "ClientCert", "Config", "ConfigError", "Context", "Counter", "Fetched", "Gateway", "GatewayError",
    "GatewayServices", "HTTPClient", "Headers", "NoConfig", "Plugin", "Principal", "Request", "Response", "Runtime",
    "Scope", "SharedResourceError", "StartupError", "TargetState", "UpstreamError", "UpstreamTimeout", "__version__",
    "hookimpl", "load_config", "loads_config", "mask_secrets", "problem", "serve", "setting",
]
