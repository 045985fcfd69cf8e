"""Cross-origin resource sharing (CORS) for triogate."""

from .config import CorsConfig
from .plugin import CorsPlugin

__version__ = "0.1.0"
__all__ = ["CorsConfig", "CorsPlugin"]
