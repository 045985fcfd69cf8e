"""Request, Response and Body: what plugins see and return.

Bodies stream by default. A plugin that needs the whole body calls
``await body.read(limit)``, which raises :class:`BodyTooLarge` past the limit
(the core answers 413) and then keeps the bytes so later readers see them too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from .authority import normalize_authority
from .clientcert import ClientCert
from .headers import Headers, HeaderItems

__all__ = ["Body", "BodyTooLarge", "Request", "Response", "Principal"]


class BodyTooLarge(Exception):
    """A body crossed the size limit its reader asked for."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


class Body:
    """A one-shot stream of byte chunks, or a fixed bytes value (repeatable)."""

    __slots__ = ("_data", "_source", "length", "_consumed", "_on_close", "_head", "received")

    def __init__(
        self,
        source: bytes | AsyncIterable[bytes] | None = None,
        length: int | None = None,
        on_close: Callable[[], Any] | None = None,
    ) -> None:
        self._on_close = on_close
        self._consumed = False
        self._head: bytes | None = None
        #: bytes taken from the stream so far (a fixed body: its length); the access log's bytes_in
        self.received = 0
        if source is None:
            source = b""
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._data: bytes | None = bytes(source)
            self._source: AsyncIterable[bytes] | None = None
            self.length = len(self._data)
            self.received = self.length
        else:
            self._data = None
            self._source = source
            self.length = length

    @property
    def is_buffered(self) -> bool:
        """True when the whole body is in memory (it can be re-read and replayed)."""
        return self._data is not None

    @property
    def started(self) -> bool:
        """True once a one-shot stream has been (partly) consumed."""
        return self._consumed

    @property
    def data(self) -> bytes | None:
        return self._data

    async def prime(self, buffer: int = 0) -> None:
        """Read the start of a streamed body now: up to ``buffer`` bytes, at least one chunk.

        The proxy calls this before it picks a target, so a malformed, missing or too-large
        start of a body fails before a single byte goes upstream, and no upstream connection
        waits while a slow client sends it. A body that ends within what was read (most API
        bodies, with ``gateway.limits.body_buffer_bytes``) becomes buffered: it goes upstream
        in one write and can be replayed on a retry. A longer one keeps what was read and
        streams it first.
        """
        if self._data is not None or self._consumed or self._head is not None:
            return
        assert self._source is not None
        it = self._source.__aiter__()
        self._source = it
        parts: list[bytes] = []
        size = 0
        length = self.length
        while True:
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                self._data = b"".join(parts) if len(parts) != 1 else parts[0]
                self._source = None
                self.length = len(self._data)
                return
            if not chunk:
                continue
            self.received += len(chunk)
            parts.append(chunk)
            size += len(chunk)
            if length is not None and size >= length:
                async for extra in it:  # the end of the message: lets the source finish cleanly
                    self.received += len(extra)
                    parts.append(extra)
                self._data = b"".join(parts)
                self._source = None
                self.length = len(self._data)
                return
            if size >= buffer:
                break
        self._head = b"".join(parts) if len(parts) != 1 else parts[0]

    async def read(self, limit: int) -> bytes:
        """Buffer the whole body, up to ``limit`` bytes."""
        if self._data is not None:
            if len(self._data) > limit:
                raise BodyTooLarge(limit)
            return self._data
        if self.length is not None and self.length > limit:
            raise BodyTooLarge(limit)
        parts: list[bytes] = []
        size = 0
        async for chunk in self:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            parts.append(chunk)
        self._data = b"".join(parts)
        self._source = None
        self.length = size
        return self._data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._data is not None:
            if self._data:
                yield self._data
            return
        if self._consumed:
            raise RuntimeError("body stream was already consumed")
        self._consumed = True
        assert self._source is not None
        head, self._head = self._head, None
        if head:
            yield head
        async for chunk in self._source:
            if chunk:
                self.received += len(chunk)
                yield chunk

    async def aclose(self) -> None:
        """Release what the stream holds (e.g. return an upstream connection)."""
        src = self._source
        if src is not None and hasattr(src, "aclose"):
            await src.aclose()  # type: ignore[union-attr]
        cb, self._on_close = self._on_close, None
        if cb is not None:
            res = cb()
            if hasattr(res, "__await__"):
                await res

    def wrap(self, fn: Callable[[AsyncIterable[bytes]], AsyncIterable[bytes]]) -> Body:
        """A new body that streams ``fn(self)``; length becomes unknown."""
        return Body(fn(self), None, on_close=self.aclose)

    def __repr__(self) -> str:
        kind = "bytes" if self._data is not None else "stream"
        return f"<Body {kind} length={self.length}>"


class Request:
    """An incoming request as the pipeline sees it.

    ``path`` is the normalized path (what routing matched and what is forwarded);
    ``raw_path`` is the target as the client sent it, for logging only. ``host`` (no port,
    what host-bound routes match) and ``authority`` (``host`` plus a non-default port: the
    cache key and the ``Host``/``X-Forwarded-Host`` sent upstream) are the ``Host`` header
    normalized once, here (see :mod:`triogate.authority`).
    """

    __slots__ = (
        "method", "path", "query", "headers", "body", "http_version",
        "scheme", "client", "raw_path", "host", "authority", "tls_client_cert",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str = "",
        headers: Headers | HeaderItems | None = None,
        body: Body | None = None,
        *,
        http_version: str = "1.1",
        scheme: str = "http",
        client: tuple[str, int] | None = None,
        raw_path: str | None = None,
        tls_client_cert: ClientCert | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body if body is not None else Body()
        self.http_version = http_version
        self.scheme = scheme
        self.client = client
        self.raw_path = raw_path if raw_path is not None else path
        #: the verified client certificate of a mutual-TLS connection (set by the listener), else None
        self.tls_client_cert = tls_client_cert
        self.host, self.authority = normalize_authority(self.headers.get("host") or "", scheme)

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    def query_params(self) -> dict[str, list[str]]:
        from urllib.parse import parse_qs

        return parse_qs(self.query, keep_blank_values=True)

    def cookies(self) -> dict[str, str]:
        from http.cookies import SimpleCookie

        jar: SimpleCookie = SimpleCookie()
        for value in self.headers.get_all("cookie"):
            try:
                jar.load(value)
            except Exception:  # malformed cookie header: ignore what cannot be parsed
                continue
        return {k: m.value for k, m in jar.items()}

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


class Response:
    """A response: from an upstream, from the cache, or made by a plugin."""

    __slots__ = ("status", "headers", "body", "reason", "upgrade")

    def __init__(
        self,
        status: int = 200,
        headers: Headers | HeaderItems | None = None,
        body: Body | bytes | str | AsyncIterable[bytes] | None = None,
        reason: bytes = b"",
    ) -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if isinstance(body, str):
            body = body.encode()
        self.body = body if isinstance(body, Body) else Body(body)
        self.reason = reason
        # (stream, already-read bytes) of an upstream that switched protocols (101)
        self.upgrade: tuple[Any, bytes] | None = None

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: HeaderItems | None = None,
        content_type: str = "application/json",
    ) -> Response:
        payload = json.dumps(data, separators=(",", ":")).encode()
        h = Headers(headers)
        h.set("content-type", content_type)
        h.set("content-length", str(len(payload)))
        return cls(status, h, payload)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: HeaderItems | None = None) -> Response:
        payload = text.encode()
        h = Headers(headers)
        h.setdefault("content-type", "text/plain; charset=utf-8")
        h.set("content-length", str(len(payload)))
        return cls(status, h, payload)

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


class Principal:
    """Who the caller is, as established by the auth phase."""

    __slots__ = ("consumer", "credential", "claims", "scopes", "groups", "anonymous", "method")

    def __init__(
        self,
        consumer: str | None = None,
        credential: str | None = None,
        claims: dict[str, Any] | None = None,
        scopes: frozenset[str] | set[str] | list[str] = frozenset(),
        groups: frozenset[str] | set[str] | list[str] = frozenset(),
        anonymous: bool = False,
        method: str = "",
    ) -> None:
        self.consumer = consumer
        self.credential = credential
        self.claims = claims or {}
        self.scopes = frozenset(scopes)
        self.groups = frozenset(groups)
        self.anonymous = anonymous
        self.method = method

    @property
    def id(self) -> str | None:
        """Stable identity for keys (rate limits, cache): consumer, else credential, else sub."""
        return self.consumer or self.credential or self.claims.get("sub")

    def __repr__(self) -> str:
        return f"<Principal consumer={self.consumer!r} method={self.method!r} anonymous={self.anonymous}>"
