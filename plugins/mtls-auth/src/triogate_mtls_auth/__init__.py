"""Mutual-TLS authentication for triogate: the verified client certificate names the consumer."""

from .config import MtlsAuthConfig
from .identities import IdentityTable
from .plugin import MtlsAuthPlugin

__version__ = "0.1.0"
__all__ = ["IdentityTable", "MtlsAuthConfig", "MtlsAuthPlugin"]
