"""Allow or deny clients by IPv4/IPv6 CIDR for triogate."""

from .config import IpRestrictionConfig
from .plugin import IpRestrictionPlugin

__version__ = "0.1.0"
__all__ = ["IpRestrictionConfig", "IpRestrictionPlugin"]
