"""The request-transform plugin: rewrite the request in the ``transform`` phase (priority 800).

It runs after authentication, so templates can use the principal. Without body rules
the body is never touched (it streams to the upstream as it arrives); with body rules
a JSON body is read up to ``max_body_bytes``, edited and re-framed (new Content-Length).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from triogate import Body, Context, Plugin, Response, hookimpl

from .config import RequestTransformConfig
from .fields import compile_fields
from .headers import compile_headers
from .query import compile_query
from .template import Missing, Resolver, parse_path

__all__ = ["RequestTransform"]

_ROUTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# what describes the old body and would be wrong for the new one
_STALE_BODY_HEADERS = ("content-length", "content-md5", "digest", "content-digest", "repr-digest")


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class RequestTransform(Plugin):
    """Edit headers, query parameters, JSON body fields, path and method before the upstream call."""

    priority: ClassVar[int] = 800
    Config: ClassVar[type] = RequestTransformConfig

    def __init__(self, config: RequestTransformConfig, gateway: Any, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        c = config
        self.headers = compile_headers(c.remove.headers, c.rename.headers, c.replace.headers, c.add.headers,
                                       c.append.headers)
        self.query = compile_query(c.remove.query, c.rename.query, c.replace.query, c.add.query, c.append.query)
        self.fields = compile_fields(c.remove.body, c.rename.body, c.replace.body, c.add.body, "body")
        route_cfg = gateway.config.routes.get(route) if route is not None else None
        params: set[str] | None = None
        if route_cfg is not None:
            sets = [set(_ROUTE_PARAM.findall(p)) for p in route_cfg.paths] or [set()]
            params = set.intersection(*sets)
        self.path = parse_path(c.path, "path", params) if c.path is not None else None
        if self.path is not None and route_cfg is not None and (route_cfg.rewrite or route_cfg.strip_prefix):
            raise ValueError(f"path: route {route!r} already sets rewrite/strip_prefix; use one way to rewrite the path")
        templates = self._templates()
        self.snapshot_headers = bool(self.headers) and any(r.ns == "header" for t in templates for r in t.refs)
        if params is not None:
            for t in templates:
                for ref in t.refs:
                    if ref.ns == "param" and ref.path[0] not in params:
                        raise ValueError(f"{{{ref.text}}} is not a parameter of every path of route {route!r}"
                                         f" (parameters: {', '.join(sorted(params)) or 'none'})")

    def _templates(self) -> list[Any]:
        from .template import Template

        out: list[Any] = []
        for rules in (self.headers, self.query):
            for group in (rules.replace, rules.add, rules.append):
                out.extend(t for _, t in group)

        def walk(v: Any) -> None:
            if isinstance(v, Template):
                out.append(v)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)

        for _, v in (*self.fields.replace, *self.fields.add):
            walk(v)
        if self.path is not None:
            out.extend(self.path.segments)
        return out

    @hookimpl
    async def transform(self, ctx: Context) -> Response | None:
        req = ctx.request
        resolve = Resolver(ctx, self.snapshot_headers)
        if self.path is not None:
            try:
                req.path = self.path.render(resolve, ctx.rest)
            except Missing as exc:
                return ctx.problem(400, f"cannot rewrite the path: {exc}")
        if self.config.method is not None:
            req.method = self.config.method
        if self.query:
            req.query = self.query.apply(req.query, resolve)
        if self.fields:
            failed = await self._body(ctx, resolve)
            if failed is not None:
                return failed
        if self.headers:
            self.headers.apply(req.headers, resolve)
        return None

    async def _body(self, ctx: Context, resolve: Resolver) -> Response | None:
        req = ctx.request
        body = req.body
        if body.length == 0 and not body.started:
            return None  # no body: nothing to edit
        encoding = (req.headers.get("content-encoding") or "identity").strip().lower()
        if not is_json(req.headers.get("content-type")) or encoding != "identity":
            if self.config.non_json_body == "pass":
                return None
            return ctx.problem(415, "this route's body rules need an uncompressed JSON body (application/json)")
        raw = await body.read(self.config.max_body_bytes)  # BodyTooLarge: the core answers 413
        try:
            doc = json.loads(raw, parse_constant=_reject_constant)
        except ValueError as exc:
            return ctx.problem(400, f"request body is not valid JSON: {exc}")
        if not isinstance(doc, (dict, list)):
            return ctx.problem(400, "request body must be a JSON object or array")
        self.fields.apply(doc, resolve)
        new = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        req.headers.remove(*_STALE_BODY_HEADERS)
        req.headers.set("content-length", str(len(new)))
        req.body = Body(new)
        return None
