"""OAuth 2.0 token introspection (RFC 7662) for triogate."""

from .config import IntrospectionConfig
from .plugin import IntrospectionPlugin

__version__ = "0.1.0"
__all__ = ["IntrospectionPlugin", "IntrospectionConfig"]
