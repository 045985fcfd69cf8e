"""One access-log line per request, as JSON (default) or a human-readable console line.

A line carries who (client, consumer), what (method, path, route, upstream target), the outcome
(status, sizes, timings), which plugin short-circuited the request and why, and whatever plugins put
in ``ctx.log_extra`` (trace ids from the opentelemetry plugin, for instance).

Secrets never reach it: query parameters, logged headers (``access_log_headers``) and
``log_extra`` keys that look like credentials are redacted -- Authorization keeps only its scheme,
cookies only their names, API keys and tokens become ``REDACTED``. What looks like a credential is
:func:`triogate.masking.is_secret_name`, which config diffs use too.

Cost: a JSON line is built as one string (no intermediate dict, no ``json.dumps`` of the whole
entry) and lines are buffered in memory: they are written out when the buffer reaches
:data:`BUFFER_BYTES`, when a line finds the last write older than :data:`FLUSH_INTERVAL`, by the
gateway's flush task at least every :data:`FLUSH_INTERVAL`, and on reload and shutdown. A request
never makes a write syscall of its own. A crash (SIGKILL, OOM) loses at most the lines of the last
interval.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import time
from json.encoder import encode_basestring_ascii as _quote  # C-accelerated; json.dumps's own escaping
from typing import Any
from urllib.parse import unquote_plus

from .context import Context
from .masking import REDACTED, is_secret_name

__all__ = ["BUFFER_BYTES", "FLUSH_INTERVAL", "REDACTED", "AccessLog", "redact_extra", "redact_header",
           "redact_query"]

log = logging.getLogger("triogate")

_PROBLEM_JSON = "application/problem+json"

#: seconds a buffered line may wait before it is written (the flush task's period)
FLUSH_INTERVAL = 0.5
#: buffered bytes (approximately: characters) that trigger a write at once
BUFFER_BYTES = 64 * 1024
# stdout may be a pipe shared by several workers: writes up to PIPE_BUF bytes are atomic there,
# so lines are written in chunks of whole lines no larger than this (a longer line goes alone)
_PIPE_BUF = 4096


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


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _value(value: Any) -> str:
    """``value`` as JSON, exactly as ``json.dumps(..., default=str)`` writes it; str/int/None without it."""
    cls = value.__class__
    if cls is str:
        return _quote(value)
    if cls is int:
        return int.__repr__(value)
    if cls is float and value - value == 0.0:  # finite (json.dumps writes NaN/Infinity for the others)
        return float.__repr__(value)
    if value is None:
        return "null"
    return _dumps(value)


# every key a line may have besides log_extra's: a log_extra key among these replaces the value in
# place (dict.update), which the slow path reproduces exactly
_ENTRY_KEYS = frozenset({"time", "request_id", "client_ip", "method", "path", "status", "bytes_in", "bytes_out",
                         "duration_ms", "route", "query", "upstream", "target", "upstream_ms", "consumer",
                         "short_circuit", "error", "headers"})


class _Clock:
    """The ``time`` field, formatted once per second instead of once per line."""

    __slots__ = ("second", "text")

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        return self.text


class AccessLog:
    """Writes the access log; the format and logged headers follow the serving config (reloads).

    Lines are buffered (see the module docstring); :meth:`flush` writes them out, :meth:`close`
    flushes and closes. A log that is still open when the interpreter exits is flushed then too.
    """

    def __init__(self, destination: str, *, flush_interval: float = FLUSH_INTERVAL,
                 buffer_bytes: int = BUFFER_BYTES) -> None:
        self.enabled = destination != "off"
        self.destination = destination
        self.flush_interval = flush_interval
        self.buffer_bytes = buffer_bytes
        self._fd: int | None = None
        self._stdout = destination == "-"
        if self.enabled and not self._stdout:
            # O_APPEND: each write lands at the end, whole, even with several workers on one file
            self._fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self._lines: list[str] = []
        self._size = 0
        self._flushed_at = time.monotonic()
        self._closed = False
        self._failing = False
        self._cfg: Any = None
        self._console = False
        self._headers: tuple[str, ...] = ()
        self._clock = _Clock()
        if self.enabled:
            atexit.register(self.flush)

    def _configure(self, gcfg: Any) -> None:
        self._cfg = gcfg
        self._console = getattr(gcfg, "access_log_format", "json") == "console"
        self._headers = tuple(h.lower() for h in getattr(gcfg, "access_log_headers", ()))

    # ------------------------------------------------------------------ formatting

    def record(self, ctx: Context) -> dict[str, Any]:
        """The line as a dict (the console format, and the JSON reference the fast path matches)."""
        gcfg = ctx.gateway.config.gateway
        if gcfg is not self._cfg:
            self._configure(gcfg)
        req = ctx.request
        entry: dict[str, Any] = {
            "time": self._clock.now(),
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
            entry["short_circuit"] = self._decision(ctx)
        if ctx.error:
            entry["error"] = ctx.error
        if self._headers:
            logged = self._logged_headers(ctx)
            if logged:
                entry["headers"] = logged
        if ctx.log_extra:
            entry.update(redact_extra(ctx.log_extra))
        return entry

    @staticmethod
    def _decision(ctx: Context) -> dict[str, Any]:
        assert ctx.short_circuit is not None
        decision: dict[str, Any] = {"plugin": ctx.short_circuit[0], "phase": ctx.short_circuit[1],
                                    "status": ctx.status}
        reason = _short_circuit_reason(ctx)
        if reason:
            decision["reason"] = reason
        return decision

    def _logged_headers(self, ctx: Context) -> dict[str, str]:
        logged = {}
        headers = ctx.request.headers
        for name in self._headers:
            values = headers.get_all(name)
            if values:
                logged[name] = redact_header(name, ", ".join(values))
        return logged

    def json_line(self, ctx: Context) -> str:
        """The JSON line, built as one string; byte for byte what ``json.dumps(record(ctx))`` gives."""
        extra = ctx.log_extra
        for k in extra:
            if k.__class__ is not str or k in _ENTRY_KEYS:
                return _dumps(self.record(ctx))  # a log_extra key overrides a field, or is not a string
        try:
            return self._json_line(ctx, extra)
        except TypeError:  # a field of an unexpected type (None client_ip, an IntEnum status): the general path
            return _dumps(self.record(ctx))

    def _json_line(self, ctx: Context, extra: dict[str, Any]) -> str:
        # the fields every line has, in one f-string: str fields go through json's own escaping
        # (TypeError when one is not a str), ints are checked to be plain ints
        req = ctx.request
        status, bytes_in, bytes_out = ctx.status, ctx.bytes_in, ctx.bytes_out
        if status.__class__ is not int or bytes_in.__class__ is not int or bytes_out.__class__ is not int:
            raise TypeError("not a plain int")
        route = ctx.route_name
        line = (f'{{"time":"{self._clock.now()}","request_id":{_quote(ctx.request_id)},'
                f'"client_ip":{_quote(ctx.client_ip)},"method":{_quote(req.method)},"path":{_quote(req.path)},'
                f'"status":{status},"bytes_in":{bytes_in},"bytes_out":{bytes_out},'
                f'"duration_ms":{float.__repr__(round(ctx.elapsed * 1000, 3))},'
                f'"route":{"null" if route is None else _quote(route)}')
        if ctx.upstream_target is not None:
            upstream = (f',"upstream":{_value(ctx.upstream_name)},"target":{_quote(ctx.upstream_target)},'
                        f'"upstream_ms":{_value(round((ctx.upstream_seconds or 0) * 1000, 3))}')
        elif ctx.upstream_name is not None:
            upstream = f',"upstream":{_value(ctx.upstream_name)}'
        else:
            upstream = ""
        if req.query:
            line += f',"query":{_quote(redact_query(req.query))}'
        line += upstream
        if ctx.principal is not None and ctx.principal.consumer:
            line += f',"consumer":{_value(ctx.principal.consumer)}'
        if ctx.short_circuit is not None:  # _decision(ctx) as JSON, without building the dict
            reason = _short_circuit_reason(ctx)
            line += (f',"short_circuit":{{"plugin":{_value(ctx.short_circuit[0])},'
                     f'"phase":{_value(ctx.short_circuit[1])},"status":{status}'
                     + (f',"reason":{_quote(reason)}}}' if reason else "}"))
        if ctx.error:
            line += f',"error":{_value(ctx.error)}'
        if self._headers:
            logged = self._logged_headers(ctx)
            if logged:
                line += f',"headers":{_dumps(logged)}'
        if extra:
            line += "".join([f",{_quote(k)}:{_value(v)}" for k, v in redact_extra(extra).items()])
        return line + "}"

    def format(self, ctx: Context) -> str:
        gcfg = ctx.gateway.config.gateway
        if gcfg is not self._cfg:
            self._configure(gcfg)
        if self._console:
            return console_line(self.record(ctx))
        return self.json_line(ctx)

    # ------------------------------------------------------------------ buffering

    def write(self, ctx: Context) -> None:
        """Buffer the request's line; write the buffer out if it is full or the last write is old."""
        if not self.enabled or self._closed:
            return
        line = self.format(ctx)
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= self.buffer_bytes or time.monotonic() - self._flushed_at >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write every buffered line: one ``write`` for a file, whole-line chunks of ≤ 4 KiB for stdout."""
        self._flushed_at = time.monotonic()
        lines = self._lines
        if not lines:
            return
        self._lines = []
        self._size = 0
        try:
            if self._stdout:
                self._write_stdout(lines)
            elif self._fd is not None:
                data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
        except (OSError, ValueError, AttributeError) as exc:  # disk full, closed or no stdout: lines lost, still serving
            if not self._failing:
                log.error("access log %s: write failed, %d lines lost: %s", self.destination, len(lines), exc)
            self._failing = True
        else:
            self._failing = False

    @staticmethod
    def _write_stdout(lines: list[str]) -> None:
        out = sys.stdout  # looked up each time: tests and embedders replace it
        chunk: list[str] = []
        size = 0
        for line in lines:
            n = len(line) + 1
            if chunk and size + n > _PIPE_BUF:
                out.write("\n".join(chunk) + "\n")
                out.flush()
                chunk, size = [], 0
            chunk.append(line)
            size += n
        out.write("\n".join(chunk) + "\n")
        out.flush()

    def close(self) -> None:
        """Flush, then close the file; later lines are dropped (the gateway has stopped serving)."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self.enabled:
            atexit.unregister(self.flush)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
