"""API-key authentication for triogate."""

from .config import KeyAuthConfig
from .plugin import KeyAuthPlugin

__version__ = "0.1.0"
__all__ = ["KeyAuthPlugin", "KeyAuthConfig"]
