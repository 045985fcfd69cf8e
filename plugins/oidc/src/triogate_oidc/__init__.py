"""OpenID Connect login for triogate: the gateway as relying party for the browser apps behind a route."""

from .config import OidcConfig
from .plugin import OidcPlugin

__version__ = "0.1.0"
__all__ = ["OidcConfig", "OidcPlugin"]
