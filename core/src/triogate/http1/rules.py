"""Request-head rules every backend applies, in one place (RFC 9112 §3, §6; smuggling defences).

Both parsers hand the parsed head here, so the verdict on an ambiguous request
never depends on which parser read it.
"""

from __future__ import annotations

import re

from .events import ProtocolError, RequestHead

__all__ = [
    "Limits", "check_request", "check_raw_head", "check_controls", "valid_header", "valid_host",
    "valid_name", "HTTP_VERSIONS",
]

HTTP_VERSIONS = frozenset({"1.0", "1.1"})
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9110 §5.5: a field value is VCHAR, obs-text (0x80-0xff), SP and HTAB; every other control
# character (and DEL) is refused on the way in, so nothing accepted fails to serialize upstream.
# Checked by deleting every allowed byte (bytes.translate, ~1 ns a byte; a regex class scan is ~6x
# slower): whatever is left is refused. CR and LF are line ends in a raw head (bare ones are
# refused by check_raw_head), never part of a parsed value.
_HEAD_OK = bytes(b for b in range(256) if b >= 0x20 and b != 0x7f or b in b"\t\r\n")
_CL_LINE = re.compile(rb"\ncontent-length:([^\r\n]*)")
_known_good_names: set[bytes] = set()
# RFC 3986 reg-name / IPv4 characters, and what an IP-literal or port adds
_HOST_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]")


class Limits:
    __slots__ = ("max_request_line", "max_header_bytes", "max_headers")

    def __init__(self, max_request_line: int = 8192, max_header_bytes: int = 32768, max_headers: int = 100) -> None:
        self.max_request_line = max_request_line
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers


def valid_name(name: bytes) -> bool:
    """Is this field name a token? (Names seen before are remembered.)"""
    if name in _known_good_names:
        return True
    if _TOKEN.fullmatch(name) is None:
        return False
    if len(_known_good_names) < 4096:
        _known_good_names.add(name)
    return True


def valid_header(name: bytes, value: bytes) -> bool:
    """Is this field safe to serialize (no response splitting, a token name)?"""
    return valid_name(name) and _BAD_VALUE.search(value) is None


def check_controls(block: bytes) -> None:
    """Refuse a request head with a control character anywhere (0x00-0x1f but HTAB, CR, LF; DEL).

    One C-level pass over the whole head: cheaper than a check per field, and the same verdict
    whichever parser read the head (h11 accepts 0x01-0x08, 0x0e-0x1f and DEL in values).
    """
    if block.translate(None, _HEAD_OK):
        raise ProtocolError("control character in request head")



def valid_host(value: bytes) -> bool:
    """uri-host [ ":" port ] (RFC 9110 §7.2): no path, userinfo, spaces or controls.

    Used for the HTTP/1.1 Host header and absolute-form authority and for HTTP/2's :authority.
    """
    if not value:
        return True  # an empty Host is allowed (RFC 9112 §3.2) and matches no host-bound route
    if not _HOST_BYTES.issuperset(value):
        return False
    if value.startswith(b"["):
        end = value.find(b"]")
        if end < 0:
            return False
        rest = value[end + 1:]
        return not rest or (rest[:1] == b":" and rest[1:].isdigit())
    host, sep, port = value.rpartition(b":")
    if sep:
        return bool(host) and b":" not in host and b"[" not in host and port.isdigit()
    return b"]" not in value


def check_raw_head(block: bytes) -> None:
    """Rules on the raw head bytes for parsers that tolerate them (h11 accepts bare LF and obs-fold)."""
    check_controls(block)
    if block.count(b"\n") != block.count(b"\r\n") or block.count(b"\r") != block.count(b"\r\n"):
        raise ProtocolError("bare CR or LF in request head")
    if b"\n " in block or b"\n\t" in block:
        raise ProtocolError("obsolete line folding in request head")
    lower = block.lower()
    if b"\ncontent-length:" in lower:
        values = _CL_LINE.findall(lower)
        if len(values) > 1:
            raise ProtocolError("duplicate Content-Length")
        if values and not values[0].strip(b" \t").isdigit():
            raise ProtocolError("bad Content-Length")


def check_request(method: str, target: bytes, headers: list[tuple[bytes, bytes]], http_version: str,
                  limits: Limits) -> RequestHead:
    if http_version not in HTTP_VERSIONS:
        raise ProtocolError(f"HTTP version {http_version} not supported", 505)
    if len(target) > limits.max_request_line:
        raise ProtocolError("request target too long", 414)
    if len(headers) > limits.max_headers:
        raise ProtocolError("too many header fields", 431)
    length: int | None = 0
    chunked = False
    cl_seen = te_seen = False
    hosts = 0
    expect_continue = False
    conn_upgrade = False
    conn_close = False
    upgrade = False
    for name, value in headers:
        if name == b"content-length":
            if cl_seen:
                raise ProtocolError("duplicate Content-Length")
            cl_seen = True
            if not value.isdigit() or len(value) > 18:
                raise ProtocolError("bad Content-Length")
            length = int(value)
        elif name == b"transfer-encoding":
            if te_seen:
                raise ProtocolError("more than one Transfer-Encoding", 501)
            te_seen = True
            if value.strip().lower() != b"chunked":
                raise ProtocolError("only Transfer-Encoding: chunked is supported", 501)
            chunked = True
            length = None
        elif name == b"host":
            hosts += 1
        elif name == b"expect":
            if value.strip().lower() == b"100-continue":
                expect_continue = True
        elif name == b"connection":
            tokens = [t.strip() for t in value.lower().split(b",")]
            conn_upgrade = conn_upgrade or b"upgrade" in tokens
            conn_close = conn_close or b"close" in tokens
        elif name == b"upgrade":
            upgrade = True
    if cl_seen and te_seen:
        raise ProtocolError("both Content-Length and Transfer-Encoding")
    if te_seen and http_version == "1.0":
        raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request")
    if hosts > 1:
        raise ProtocolError("more than one Host header")
    if hosts == 0 and http_version == "1.1":
        raise ProtocolError("missing Host header")
    return RequestHead(method, target, headers, http_version, length, chunked,
                       expect_continue and http_version == "1.1", upgrade and conn_upgrade,
                       http_version == "1.1" and not conn_close)
