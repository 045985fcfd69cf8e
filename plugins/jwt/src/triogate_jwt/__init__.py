"""JWT bearer-token authentication for triogate (PyJWT underneath, no hand-written JOSE)."""

from .config import JwtConfig
from .plugin import JwtPlugin

__version__ = "0.1.0"
__all__ = ["JwtConfig", "JwtPlugin"]
