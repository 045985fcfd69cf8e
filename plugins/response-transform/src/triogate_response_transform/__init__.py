"""triogate-response-transform: edit responses on their way back to the client."""

from .config import ResponseTransformConfig
from .plugin import ResponseTransform

__version__ = "0.1.0"
__all__ = ["ResponseTransform", "ResponseTransformConfig"]
