"""Settings of the request-size-limit plugin."""

from __future__ import annotations

import attrs
import triogate


@attrs.define(frozen=True)
class RequestSizeLimitConfig:
    max_bytes: int = triogate.setting(
        1024 * 1024, description="largest request body in bytes; 413 as soon as a body crosses it")
    require_content_length: bool = triogate.setting(
        False, description="refuse bodies without Content-Length (chunked uploads) with 411")

    def __attrs_post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ValueError(f"max_bytes: expected 0 or more bytes, got {self.max_bytes}")
