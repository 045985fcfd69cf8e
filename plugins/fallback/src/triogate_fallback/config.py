"""Settings of the fallback plugin ([plugins.fallback] or [routes.<r>.plugins.fallback])."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import triogate
from triogate import fields

__all__ = ["FallbackConfig", "StaticResponse"]


def _header_keys(inst: object, name: str, value: dict[str, str]) -> Iterator[tuple[str, str]]:
    for key in value:
        if not fields.is_header_name(key):
            yield fields.key_path(name, key), f"expected a header name, got {key!r}"
    if any(k.lower() in _MANAGED for k in value):
        yield name, "content-length and transfer-encoding are computed by the gateway"


_MANAGED = frozenset({"content-length", "transfer-encoding"})


def _status_ok(value: object) -> bool:
    return isinstance(value, int) and 200 <= value <= 599


@attrs.define(frozen=True)
class StaticResponse:
    status: int = triogate.setting(
        200, description="status of the static answer", validator=fields.check(_status_ok, "a status from 200 to 599"))
    headers: dict[str, str] = triogate.setting(
        factory=dict, description='response headers, e.g. { content-type = "application/json" }',
        validator=fields.Check(_header_keys))
    body: str = triogate.setting("", description="response body (UTF-8); text/plain unless headers set content-type")


@attrs.define(frozen=True)
class FallbackConfig:
    upstream: str | None = triogate.setting(
        None, description="configured upstream that answers instead (same path rewrite and proxy headers); "
                          "checked at load; exclusive with static")
    static: StaticResponse | None = triogate.setting(
        None, description="static answer instead: { status, headers, body }; exclusive with upstream")
    statuses: list[int] = triogate.setting(
        factory=lambda: [502, 503, 504],
        description="upstream-call statuses that trigger the fallback (also the gateway's own 502/503/504 for "
                    "connect failures, timeouts, an open circuit, no healthy target)",
        validator=fields.each(lambda s: isinstance(s, int) and 400 <= s <= 599, "a status from 400 to 599"))
    header: str = triogate.setting(
        "x-fallback", description='response header marking a fallback answer: "upstream:<name>" or "static"',
        validator=fields.header_name)

    def __attrs_post_init__(self) -> None:
        if self.upstream is None and self.static is None:
            raise ValueError("set either upstream (a configured upstream name) or static (a static response)")
        if self.upstream is not None and self.static is not None:
            raise ValueError("upstream and static are exclusive: set only one of them")
        if not self.statuses:
            raise ValueError("statuses: give at least one status")
