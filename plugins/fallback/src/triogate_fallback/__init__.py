"""Fallback answers for triogate: another upstream or a static response when the upstream fails."""

from .config import FallbackConfig, StaticResponse
from .plugin import FallbackPlugin

__version__ = "0.1.0"
__all__ = ["FallbackConfig", "FallbackPlugin", "StaticResponse"]
