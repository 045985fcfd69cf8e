"""The response-transform plugin: edit responses in ``post_response`` (priority 800).

Status mapping and header rules work on any response of the route without touching
its body. The body is read (up to ``max_body_bytes``), edited and re-framed only when
body rules exist and the response is JSON; otherwise it streams through untouched.
"""

from __future__ import annotations

from typing import Any, ClassVar

from triogate import BodyTooLarge, Context, GatewayError, Plugin, Response, hookimpl
from triogate.template import Resolver, check_params, route_params
from triogate_transform_rules import compile_fields, compile_headers, dumps, is_json, loads

from .config import ResponseTransformConfig

__all__ = ["ResponseTransform"]

# what describes the old body and would be wrong for the new one
_STALE_BODY_HEADERS = ("content-length", "transfer-encoding", "content-md5", "digest", "content-digest",
                       "repr-digest", "etag")
_NO_BODY = frozenset({101, 204, 304})


class ResponseTransform(Plugin):
    """Map status codes, edit response headers and JSON body fields."""

    priority: ClassVar[int] = 800
    Config: ClassVar[type] = ResponseTransformConfig

    def __init__(self, config: ResponseTransformConfig, gateway: Any, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        c = config
        self.headers = compile_headers(c.remove.headers, c.rename.headers, c.replace.headers, c.add.headers,
                                       c.append.headers)
        self.fields = compile_fields(c.remove.body, c.rename.body, c.replace.body, c.add.body, "body")
        self.status = {int(k): v for k, v in c.status.items()}
        route_cfg = gateway.config.routes.get(route) if route is not None else None
        if route_cfg is not None:
            check_params((*self.headers.refs, *self.fields.refs), route_params(route_cfg.paths))

    @hookimpl
    async def transform(self, ctx: Context) -> None:
        if self.fields:
            # ask for an uncompressed body: a compressed one cannot be edited
            ctx.request.headers.remove("accept-encoding")

    @hookimpl
    async def post_response(self, ctx: Context, response: Response) -> Response | None:
        if response.status == 101:
            return None
        new_status = self.status.get(response.status)
        if new_status is not None:
            response.status = new_status
            response.reason = b""
        resolve = Resolver(ctx)
        if self.headers:
            self.headers.apply(response.headers, resolve)
        if not self.fields or response.status in _NO_BODY or ctx.request.method == "HEAD":
            return None
        headers = response.headers
        encoding = (headers.get("content-encoding") or "identity").strip().lower()
        if not is_json(headers.get("content-type")):
            if self.config.non_json_body == "pass":
                return None
            return ctx.problem(502, "the upstream answered a body that is not JSON")
        if encoding != "identity":
            return ctx.problem(502, f"cannot transform a response body with Content-Encoding: {encoding}")
        try:
            raw = await response.body.read(self.config.max_body_bytes)
        except BodyTooLarge:
            return ctx.problem(502, f"the response body is larger than {self.config.max_body_bytes} bytes")
        except GatewayError as exc:
            return ctx.problem(502, exc.detail or "the upstream failed while sending the body")
        if not raw:
            return None
        try:
            doc = loads(raw)
        except ValueError as exc:
            return ctx.problem(502, f"the response body is not valid JSON: {exc}")
        self.fields.apply(doc, resolve)
        new = dumps(doc)
        out = headers.copy()
        out.remove(*_STALE_BODY_HEADERS)
        out.set("content-length", str(len(new)))
        return Response(response.status, out, new, reason=response.reason)
