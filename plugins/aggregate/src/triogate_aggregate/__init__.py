"""triogate-aggregate: one request, several backends called concurrently, one JSON answer."""

from .config import AggregateConfig, BackendConfig
from .plugin import Aggregate

__version__ = "0.1.0"
__all__ = ["Aggregate", "AggregateConfig", "BackendConfig"]
