"""Rate limiting for triogate: sliding-window, fixed-window and GCRA limits, in memory or shared through Redis."""

from .backends import Check, MemoryBackend, RedisBackend, Result
from .config import Limit, PolicyConfig, RateLimitConfig, parse_limit
from .metrics import STATS_KEY, RateLimitStats, stats_of
from .plugin import RateLimitPlugin

__version__ = "0.1.0"
__all__ = [
    "STATS_KEY", "Check", "Limit", "MemoryBackend", "PolicyConfig", "RateLimitConfig", "RateLimitPlugin",
    "RateLimitStats", "RedisBackend", "Result", "parse_limit", "stats_of",
]
