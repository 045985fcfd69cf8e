"""Settings of the mirror plugin ([plugins.mirror] or [routes.<r>.plugins.mirror])."""

from __future__ import annotations

import attrs
import triogate
from triogate import fields


def _percentage(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100


def _header_value(value: object) -> bool:
    return isinstance(value, str) and all(" " <= c <= "~" for c in value)


@attrs.define(frozen=True)
class MirrorConfig:
    upstream: str = triogate.setting(
        description="name of the [upstreams.<name>] that receives the copies (the shadow); checked at load")
    percentage: float = triogate.setting(
        100.0, description="share of requests mirrored, 0 to 100",
        validator=fields.check(_percentage, "a number from 0 to 100"))
    deterministic: bool = triogate.setting(
        False, description="sample by a hash of the request id (a request id the client sent is mirrored or not "
                           "the same way on every gateway) instead of at random")
    max_body_bytes: int = triogate.setting(
        65536, description="larger request bodies are not mirrored (counted as skipped); at most "
                           "gateway.limits.body_buffer_bytes, the part the core buffers anyway",
        validator=fields.at_least(0))
    max_in_flight: int = triogate.setting(
        100, description="mirrored requests under way at once per plugin instance; beyond it copies are "
                         "dropped (counted)",
        validator=fields.at_least(1))
    timeout: float = triogate.setting(
        5.0, description="seconds a mirrored request may take, answer included, before it is cancelled (failed)",
        validator=fields.duration)
    header: str = triogate.setting(
        "x-mirrored-by", description="marker header added to every mirrored request",
        validator=fields.header_name)
    header_value: str = triogate.setting(
        "triogate", description="value of the marker header",
        validator=fields.check(_header_value, "visible ASCII characters and spaces"))
