"""Access control lists for triogate: allow/deny groups, roles and scopes per route."""

from .config import AclConfig
from .plugin import AclPlugin

__version__ = "0.1.0"
__all__ = ["AclPlugin", "AclConfig"]
