"""Traffic mirroring (shadowing) for triogate."""

from .config import MirrorConfig
from .plugin import MirrorPlugin, MirrorStats

__version__ = "0.1.0"
__all__ = ["MirrorConfig", "MirrorPlugin", "MirrorStats"]
