"""Time bounds of one request body, shared by both front-ends.

A slow client must not hold a connection (and, once its body streams, an upstream
connection) for as long as it likes. Three bounds apply to every read of a body:

- ``timeouts.body``: the longest pause between two reads (as before);
- ``timeouts.request_body``: the whole body, from its first read to its end (Go's
  ``ReadTimeout``, Envoy's ``request_timeout``), so a 100 MB upload trickled at 10 KB/s
  cannot take hours;
- ``limits.min_body_rate``: after ``timeouts.body_rate_grace`` seconds of waiting, the
  bytes received must average at least that many per second of waiting (Kestrel's
  ``MinRequestBodyDataRate``, Apache's ``RequestReadTimeout body=..,MinRate=..``). Only time
  spent waiting for the client counts: a slow upstream that stops the gateway from reading
  is not the client's fault.

Each bound is a deadline for the read about to start, so the native listener keeps its one
float assignment per read (deadlines.py) and the ASGI adapter one cancel scope per read.
"""

from __future__ import annotations

from typing import Any

from .problem import GatewayError

__all__ = ["BodyPacer", "RequestTimeout"]


class RequestTimeout(GatewayError):
    """The client did not send its request body in time (408)."""

    status = 408

    def __init__(self, detail: str = "request body not received in time") -> None:
        super().__init__(detail, headers=[("connection", "close")])


class BodyPacer:
    """Deadlines for the reads of one request body (trio clock seconds)."""

    __slots__ = ("bound", "end", "gap", "grace", "rate", "received", "waited")

    def __init__(self, limits: Any, timeouts: Any, now: float) -> None:
        self.gap: float = timeouts.body
        self.end: float = now + timeouts.request_body
        self.rate: int = limits.min_body_rate
        self.grace: float = timeouts.body_rate_grace
        self.waited = 0.0   # seconds spent waiting for the client so far
        self.received = 0   # body bytes received so far (decoded: chunk framing does not count)
        self.bound = 0      # which bound the last deadline came from: 0 pause, 1 whole body, 2 rate

    def deadline(self, now: float) -> float:
        """By when the read starting at ``now`` must have returned."""
        d = now + self.gap
        bound = 0
        if self.end < d:
            d = self.end
            bound = 1
        if self.rate:
            # received >= rate * (waited - grace) must keep holding while this read waits
            r = now + self.grace + self.received / self.rate - self.waited
            if r < d:
                d = r
                bound = 2
        self.bound = bound
        return d

    def read(self, started: float, now: float, n: int) -> None:
        """Account a wait for the client from ``started`` to ``now`` that brought ``n`` body bytes."""
        self.waited += now - started
        self.received += n

    def reason(self) -> str:
        """Which bound the last deadline came from, for the 408's detail."""
        return _REASONS[self.bound]


_REASONS = ("request body not received in time",
            "request body took longer than timeouts.request_body",
            "request body arrived slower than limits.min_body_rate")
