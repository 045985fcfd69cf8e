"""Request body size limits per route for triogate."""

from .config import RequestSizeLimitConfig
from .plugin import RequestSizeLimitPlugin

__version__ = "0.1.0"
__all__ = ["RequestSizeLimitConfig", "RequestSizeLimitPlugin"]
