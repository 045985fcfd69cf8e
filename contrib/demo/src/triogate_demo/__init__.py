"""Demo upstream services for triogate."""

from .services import SERVICES, make_handler, serve_all

__all__ = ["SERVICES", "make_handler", "serve_all"]
