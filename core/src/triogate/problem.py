"""RFC 9457 problem details: every error the gateway itself produces."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from .headers import Headers, HeaderItems
from .messages import Response

__all__ = ["problem", "GatewayError"]

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str | None = None,
    *,
    request_id: str | None = None,
    title: str | None = None,
    type: str = "about:blank",
    headers: HeaderItems | None = None,
    **extra: Any,
) -> Response:
    """Build an ``application/problem+json`` response.

    Inside a hook prefer ``ctx.problem(...)``, which fills in the request id.
    """
    try:
        default_title = HTTPStatus(status).phrase
    except ValueError:
        default_title = "Error"
    doc: dict[str, Any] = {"type": type, "title": title or default_title, "status": status}
    if detail:
        doc["detail"] = detail
    if request_id:
        doc["request_id"] = request_id
    doc.update(extra)
    payload = json.dumps(doc, separators=(",", ":")).encode()
    h = Headers(headers)
    h.set("content-type", PROBLEM_JSON)
    h.set("content-length", str(len(payload)))
    h.set("cache-control", "no-store")
    return Response(status, h, payload)


class GatewayError(Exception):
    """An error with an HTTP status; the core turns it into problem+json.

    Raise it (or a subclass) from anywhere in the pipeline; it is the one place
    where failures are mapped to statuses (h11's status-hint habit).
    """

    status = 500
    title: str | None = None

    def __init__(self, detail: str = "", *, status: int | None = None, headers: HeaderItems | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers = headers

    def to_response(self, request_id: str | None) -> Response:
        return problem(self.status, self.detail or None, request_id=request_id, title=self.title, headers=self.headers)


class BadGateway(GatewayError):
    status = 502


class ServiceUnavailable(GatewayError):
    status = 503


class GatewayTimeout(GatewayError):
    status = 504
