"""Rate limiting for triogate: sliding-window, fixed-window and GCRA limits, in memory or shared through Redis."""

from .backends import Check, MemoryBackend, RedisBackend, Result
from .config import Limit, PolicyConfig, RateLimitConfig, parse_limit
from .metrics import RateLimitStats
from .plugin import RateLimitPlugin

__version__ = "0.1.0"
__all__ = [
    "Check", "Limit", "MemoryBackend", "PolicyConfig", "RateLimitConfig", "RateLimitPlugin", "RateLimitStats",
    "RedisBackend", "Result", "parse_limit",
]
