"""HTTP Basic authentication for triogate (bcrypt / argon2 hashes only)."""

from .config import BasicAuthConfig
from .plugin import BasicAuthPlugin

__version__ = "0.1.0"
__all__ = ["BasicAuthPlugin", "BasicAuthConfig"]
