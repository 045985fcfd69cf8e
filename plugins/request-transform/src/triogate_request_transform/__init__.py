"""triogate-request-transform: edit requests before they go upstream."""

from .config import RequestTransformConfig
from .plugin import RequestTransform

__version__ = "0.1.0"
__all__ = ["RequestTransform", "RequestTransformConfig"]
