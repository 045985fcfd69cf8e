"""Events and errors shared by the HTTP/1.1 protocol backends.

The listener and the upstream pool speak to a backend through this small
interface, so h11 (the reference) and the httptools/llhttp backend (the fast
path) are interchangeable and run the same conformance tests.
"""

from __future__ import annotations

__all__ = ["RequestHead", "ResponseHead", "ProtocolError", "NEED_DATA", "END", "CLOSED", "PAUSED"]


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")  # feed more bytes with receive_data()
END = _Sentinel("END")              # the current message is complete
CLOSED = _Sentinel("CLOSED")        # the peer closed the connection between messages
PAUSED = _Sentinel("PAUSED")        # protocol switch requested; see trailing_data


class ProtocolError(Exception):
    """The peer broke HTTP/1.1; ``status`` is what a server answers (400, 413, 414, 431, 501, 505)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class RequestHead:
    __slots__ = ("method", "target", "headers", "http_version", "length", "chunked", "expect_continue",
                 "upgrade", "keep_alive")

    def __init__(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], http_version: str,
                 length: int | None, chunked: bool, expect_continue: bool, upgrade: bool,
                 keep_alive: bool = True) -> None:
        self.method = method
        self.target = target
        self.headers = headers          # lower-case names, values as sent
        self.http_version = http_version
        self.length = length            # Content-Length, 0 when no body, None when chunked
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.upgrade = upgrade
        self.keep_alive = keep_alive    # HTTP/1.1 without "Connection: close"

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target!r}>"


class ResponseHead:
    __slots__ = ("status", "reason", "headers", "http_version", "length")

    def __init__(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], http_version: str,
                 length: int | None) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.http_version = http_version
        self.length = length            # body length when known (0 for HEAD/204/304), None otherwise

    def __repr__(self) -> str:
        return f"<ResponseHead {self.status}>"
