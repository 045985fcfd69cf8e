"""One JSON line per request. Secrets never reach it: only the path (no query string
values of credential-looking parameters), never headers."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import IO, Any

from .context import Context

__all__ = ["AccessLog", "redact_query"]

_SECRET_PARAM = re.compile(
    r"(?i)(^|&)((?:access_?token|id_?token|refresh_?token|token|api_?key|apikey|key|password|passwd|secret|"
    r"client_secret|signature|sig|auth|jwt|code)=)[^&]*"
)


def redact_query(query: str) -> str:
    """Replace values of credential-looking query parameters with ``REDACTED``."""
    return _SECRET_PARAM.sub(r"\1\2REDACTED", query) if query else query


class AccessLog:
    def __init__(self, destination: str) -> None:
        self.enabled = destination != "off"
        self._fh: IO[str] | None = None
        if destination == "-":
            self._fh = sys.stdout
        elif self.enabled:
            self._fh = open(destination, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the gateway

    def record(self, ctx: Context) -> dict[str, Any]:
        req = ctx.request
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "request_id": ctx.request_id,
            "client_ip": ctx.client_ip,
            "method": req.method,
            "path": req.path,
            "status": ctx.status,
            "bytes_in": ctx.bytes_in,
            "bytes_out": ctx.bytes_out,
            "duration_ms": round(ctx.elapsed * 1000, 3),
            "route": ctx.route_name,
        }
        if req.query:
            entry["query"] = redact_query(req.query)
        if ctx.upstream_target is not None:
            entry["upstream"] = ctx.upstream_name
            entry["target"] = ctx.upstream_target
            entry["upstream_ms"] = round((ctx.upstream_seconds or 0) * 1000, 3)
        if ctx.principal is not None and ctx.principal.consumer:
            entry["consumer"] = ctx.principal.consumer
        if ctx.short_circuit is not None:
            entry["short_circuit"] = {"plugin": ctx.short_circuit[0], "phase": ctx.short_circuit[1]}
        if ctx.error:
            entry["error"] = ctx.error
        if ctx.log_extra:
            entry.update(ctx.log_extra)
        return entry

    def write(self, ctx: Context) -> None:
        if self._fh is None:
            return
        self._fh.write(json.dumps(self.record(ctx), separators=(",", ":"), default=str) + "\n")

    def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
