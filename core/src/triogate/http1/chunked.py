"""A strict decoder for chunked request bodies (RFC 9112 §7.1).

The fast backend hands chunked request bodies to this decoder instead of llhttp so
the gateway sees each declared chunk size: a chunk that announces more than the
body limit is refused before any of it is read or forwarded (as nginx does), and
sizes of 2**63 or more, where 64-bit parsers start to disagree, are refused.
"""

from __future__ import annotations

import re

from .events import END, ProtocolError

__all__ = ["ChunkedDecoder", "MAX_CHUNKED_TOTAL"]

MAX_CHUNKED_TOTAL = (1 << 63) - 1
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[^\r\n]*)?)\r\n")
_EXT_OK = re.compile(rb"(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|\"(?:[^\"\\\r\n]|\\.)*\"))?)*")
_TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n")
_MAX_LINE = 4096


class ChunkedDecoder:
    """Feed bytes; collect data chunks and END into ``out``; leftover bytes stay in ``rest``."""

    __slots__ = ("state", "remaining", "declared", "buf", "done")

    def __init__(self) -> None:
        self.state = 0          # 0 size line, 1 data, 2 CRLF after data, 3 trailers
        self.remaining = 0
        self.declared = 0       # bytes announced by chunk-size lines so far
        self.buf = b""
        self.done = False

    def feed(self, data: bytes, out: list[object]) -> bytes:
        """Decode ``data``; returns bytes after the end of the body (the next request).

        The data of every chunk decoded from one ``data`` goes into ``out`` as one bytes
        piece, so a client's tiny chunks cost one event per read, not one per chunk; a chunk
        whose data and CRLF are all here is taken in one step.
        """
        buf = self.buf + data if self.buf else data
        self.buf = b""
        pos = 0
        n = len(buf)
        pieces: list[bytes] = []
        match = _SIZE_LINE.match
        try:
            while pos < n:
                state = self.state
                if state == 0:
                    m = match(buf, pos)
                    if m is None:
                        if buf.find(b"\r\n", pos) >= 0:
                            raise ProtocolError("bad chunk size line")
                        if n - pos > _MAX_LINE or b"\n" in buf[pos:]:
                            raise ProtocolError("bad chunk size line")
                        break
                    digits_end = m.end(1)
                    size = int(buf[pos:digits_end], 16)
                    pos = m.end()
                    if pos - digits_end != 2 and _EXT_OK.fullmatch(m.group(2)) is None:
                        raise ProtocolError("bad chunk size line")
                    self.declared += size
                    if self.declared > MAX_CHUNKED_TOTAL:
                        raise ProtocolError("chunk size out of range")
                    if size == 0:
                        self.state = 3
                        continue
                    end = pos + size
                    if end + 2 <= n:  # the whole chunk and its CRLF are here
                        if buf[end] != 13 or buf[end + 1] != 10:
                            raise ProtocolError("chunk data not followed by CRLF")
                        pieces.append(buf[pos:end])
                        pos = end + 2
                        continue
                    self.remaining = size
                    self.state = 1
                    continue
                if state == 1:
                    take = min(self.remaining, n - pos)
                    pieces.append(buf[pos:pos + take])
                    pos += take
                    self.remaining -= take
                    if self.remaining == 0:
                        self.state = 2
                    continue
                if state == 2:
                    if n - pos < 2:
                        break
                    if buf[pos:pos + 2] != b"\r\n":
                        raise ProtocolError("chunk data not followed by CRLF")
                    pos += 2
                    self.state = 0
                    continue
                end = buf.find(b"\r\n", pos)  # trailers (dropped), until the empty line
                if end < 0:
                    if n - pos > _MAX_LINE or b"\n" in buf[pos:]:
                        raise ProtocolError("bad trailer field")
                    break
                line = buf[pos:end + 2]
                pos = end + 2
                if line == b"\r\n":
                    self.done = True
                    _flush(pieces, out)
                    out.append(END)
                    return buf[pos:]
                if _TRAILER_LINE.fullmatch(line) is None:
                    raise ProtocolError("bad trailer field")
        finally:
            _flush(pieces, out)  # what was decoded before an error still counts (and is then refused)
        self.buf = buf[pos:]
        return b""


def _flush(pieces: list[bytes], out: list[object]) -> None:
    if pieces:
        out.append(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        pieces.clear()
