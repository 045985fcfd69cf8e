"""Upstream side: connection pools, balancers, health, and the client plugins use."""

from .balancer import Target
from .client import Fetched, HTTPClient
from .group import Upstream
from .health import CircuitBreaker, CircuitState
from .pool import (
    ConnectError,
    ConnectionPool,
    PoolTimeout,
    RequestNotSendable,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTLSError,
)

__all__ = [
    "CircuitBreaker", "CircuitState", "ConnectError", "ConnectionPool", "Fetched", "HTTPClient",
    "PoolTimeout", "RequestNotSendable", "Target", "Upstream", "UpstreamError", "UpstreamTimeout", "UpstreamTLSError",
]
