"""triogate-cache: an RFC 9111 shared HTTP cache for triogate, in memory or in Redis."""

from .config import CacheConfig
from .plugin import Cache

__version__ = "0.1.0"
__all__ = ["Cache", "CacheConfig"]
