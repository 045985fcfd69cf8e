"""One access-log line per request, as JSON (default) or a human-readable console line.

A line carries who (client, consumer), what (method, path, route, upstream target), the outcome
(status, sizes, timings), which plugin short-circuited the request and why, and whatever plugins put
in ``ctx.log_extra`` (trace ids from the opentelemetry plugin, for instance).

Secrets never reach it: query parameters, logged headers (``access_log_headers``) and
``log_extra`` keys that look like credentials are redacted -- Authorization keeps only its scheme,
cookies only their names, API keys and tokens become ``REDACTED``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import IO, Any
from urllib.parse import unquote_plus

from .context import Context

__all__ = ["REDACTED", "AccessLog", "redact_extra", "redact_header", "redact_query"]

REDACTED = "REDACTED"
# names of query parameters, headers and log_extra keys whose values are secrets
_SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw|pwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key|signature|credential|"
    r"session|cookie|authorization|^auth$|^auth[-_]|jwt|^x-amz-|^sig$|^key$|^code$|^pass$|^otp$)"
)
_PROBLEM_JSON = "application/problem+json"


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_query(query: str) -> str:
    """Replace the values of credential-looking query parameters with ``REDACTED``.

    Parameter names are compared decoded (``api%5Fkey`` is ``api_key``); the rest is kept as sent.
    """
    if not query:
        return query
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and is_secret_name(unquote_plus(name)):
            parts[i] = f"{name}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def redact_header(name: str, value: str) -> str:
    """A request header value fit for a log line."""
    lname = name.lower()
    if lname in ("authorization", "proxy-authorization"):
        scheme, sep, _ = value.strip().partition(" ")
        return f"{scheme} {REDACTED}" if sep else REDACTED
    if lname == "cookie":
        names = [c.split("=", 1)[0].strip() for c in value.split(";") if c.strip()]
        return "; ".join(f"{n}={REDACTED}" for n in names)
    if is_secret_name(lname):
        return REDACTED
    return value


def redact_extra(value: Any, depth: int = 0) -> Any:
    """``log_extra`` values with secret-looking keys redacted (nested dicts too)."""
    if isinstance(value, dict) and depth < 4:
        return {k: (REDACTED if isinstance(k, str) and is_secret_name(k) and k not in _SAFE_EXTRA
                    else redact_extra(v, depth + 1))
                for k, v in value.items()}
    return value


# keys plugins legitimately log that match the secret pattern by name only
_SAFE_EXTRA = frozenset({"trace_id", "span_id", "reason"})


def _short_circuit_reason(ctx: Context) -> str | None:
    """Why the request was answered early: the plugin's ``log_extra["reason"]`` or its problem detail."""
    reason = ctx.log_extra.get("reason") if ctx.log_extra else None
    if reason:
        return str(reason)
    resp = ctx.response
    if resp is None or not resp.body.is_buffered:
        return None
    ctype = resp.headers.get("content-type") or ""
    data = resp.body.data or b""
    if not ctype.startswith(_PROBLEM_JSON) or len(data) > 8192:
        return None
    try:
        detail = json.loads(data).get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None


class AccessLog:
    """Writes the access log; the format and logged headers follow the serving config (reloads)."""

    def __init__(self, destination: str) -> None:
        self.enabled = destination != "off"
        self._fh: IO[str] | None = None
        if destination == "-":
            self._fh = sys.stdout
        elif self.enabled:
            self._fh = open(destination, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the gateway
        self._cfg: Any = None
        self._console = False
        self._headers: tuple[str, ...] = ()

    def _configure(self, gcfg: Any) -> None:
        self._cfg = gcfg
        self._console = getattr(gcfg, "access_log_format", "json") == "console"
        self._headers = tuple(h.lower() for h in getattr(gcfg, "access_log_headers", ()))

    def record(self, ctx: Context) -> dict[str, Any]:
        gcfg = ctx.gateway.config.gateway
        if gcfg is not self._cfg:
            self._configure(gcfg)
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
        elif ctx.upstream_name is not None:
            entry["upstream"] = ctx.upstream_name
        if ctx.principal is not None and ctx.principal.consumer:
            entry["consumer"] = ctx.principal.consumer
        if ctx.short_circuit is not None:
            decision: dict[str, Any] = {"plugin": ctx.short_circuit[0], "phase": ctx.short_circuit[1],
                                        "status": ctx.status}
            reason = _short_circuit_reason(ctx)
            if reason:
                decision["reason"] = reason
            entry["short_circuit"] = decision
        if ctx.error:
            entry["error"] = ctx.error
        if self._headers:
            logged = {}
            for name in self._headers:
                values = req.headers.get_all(name)
                if values:
                    logged[name] = redact_header(name, ", ".join(values))
            if logged:
                entry["headers"] = logged
        if ctx.log_extra:
            entry.update(redact_extra(ctx.log_extra))
        return entry

    def format(self, ctx: Context) -> str:
        entry = self.record(ctx)
        if self._console:
            return console_line(entry)
        return json.dumps(entry, separators=(",", ":"), default=str)

    def write(self, ctx: Context) -> None:
        if self._fh is None:
            return
        self._fh.write(self.format(ctx) + "\n")
        if self._fh is sys.stdout:
            # one write per line: workers sharing stdout never interleave inside a line
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()


_CONSOLE_FIRST = ("time", "request_id", "client_ip", "method", "path", "query", "status", "bytes_in", "bytes_out",
                  "duration_ms", "route", "upstream", "target", "upstream_ms", "consumer", "short_circuit",
                  "error", "headers")


def console_line(e: dict[str, Any]) -> str:
    """``time client "METHOD path?query" status bytes ms route=... consumer=... key=value ...``"""
    target = e["path"] + ("?" + e["query"] if e.get("query") else "")
    out = [e["time"], str(e["client_ip"]), f'"{e["method"]} {target}"', str(e["status"]),
           f'{e["bytes_out"]}B', f'{e["duration_ms"]}ms']
    if e.get("route"):
        out.append(f"route={e['route']}")
    if e.get("upstream"):
        up = e["upstream"] + (f"@{e['target']}" if e.get("target") else "")
        out.append(f"upstream={up}" + (f" upstream_ms={e['upstream_ms']}" if "upstream_ms" in e else ""))
    if e.get("consumer"):
        out.append(f"consumer={e['consumer']}")
    sc = e.get("short_circuit")
    if sc:
        out.append(f"short_circuit={sc['plugin']}/{sc['phase']}")
        if sc.get("reason"):
            out.append(f"reason={json.dumps(sc['reason'])}")
    if e.get("error"):
        out.append(f"error={json.dumps(e['error'])}")
    for name, value in (e.get("headers") or {}).items():
        out.append(f"{name}={json.dumps(value)}")
    out.append(f"request_id={e['request_id']}")
    for key, value in e.items():
        if key not in _CONSOLE_FIRST and not (key == "reason" and sc and sc.get("reason") == value):
            out.append(f"{key}={value if isinstance(value, (int, float)) else json.dumps(value, default=str)}")
    return " ".join(out)
