"""HTTP/1.1 protocol backends behind one interface.

``h11`` is the reference; ``fast`` (llhttp through httptools, the ``triogate[fast]``
extra) is the default when installed. Both pass the same conformance and
smuggling tests. Choose with ``[gateway] http1_parser = "auto" | "h11" | "fast"``.
"""

from __future__ import annotations

import os
from typing import Any

from .events import CLOSED, END, NEED_DATA, PAUSED, ProtocolError, RequestHead, ResponseHead
from .reference import H11ClientConnection, H11ServerConnection
from .rules import Limits

__all__ = [
    "CLOSED", "END", "NEED_DATA", "PAUSED", "ProtocolError", "RequestHead", "ResponseHead", "Limits",
    "server_connection_factory", "client_connection_factory", "fast_available", "resolve_backend",
]

try:
    from .fast import FastClientConnection, FastServerConnection

    fast_available = True
except ImportError:  # httptools not installed: the h11 reference serves
    fast_available = False


def resolve_backend(name: str = "auto") -> str:
    if name == "auto":
        name = os.environ.get("TRIOGATE_HTTP1_PARSER", "auto")
    if name == "auto":
        return "fast" if fast_available else "h11"
    if name == "fast" and not fast_available:
        raise RuntimeError('http1_parser = "fast" needs httptools: pip install "triogate[fast]"')
    return name


def server_connection_factory(backend: str = "auto") -> Any:
    """A callable ``(limits) -> server connection`` for the chosen backend."""
    return FastServerConnection if resolve_backend(backend) == "fast" else H11ServerConnection


def client_connection_factory(backend: str = "auto") -> Any:
    """A callable ``(max_head_bytes) -> client connection`` for the chosen backend."""
    return FastClientConnection if resolve_backend(backend) == "fast" else H11ClientConnection
