"""Demo upstream services for triogate."""

from .idp import IDP_PORT, serve_idp
from .services import SERVICES, make_handler, serve_all

__all__ = ["IDP_PORT", "SERVICES", "make_handler", "serve_all", "serve_idp"]
