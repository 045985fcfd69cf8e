"""The request-transform plugin: rewrite the request in the ``transform`` phase (priority 800).

It runs after authentication, so templates can use the principal. Without body rules
the body is never touched (it streams to the upstream as it arrives); with body rules
a JSON body is read up to ``max_body_bytes``, edited and re-framed (new Content-Length).
"""

from __future__ import annotations

from typing import Any, ClassVar

from triogate import Body, Context, Plugin, Response, hookimpl
from triogate.template import Missing, Ref, Resolver, check_params, parse, parse_path, route_params
from triogate_transform_rules import compile_fields, compile_headers, dumps, is_json, loads

from .config import RequestTransformConfig
from .query import compile_query

__all__ = ["RequestTransform"]

# what describes the old body and would be wrong for the new one
_STALE_BODY_HEADERS = ("content-length", "content-md5", "digest", "content-digest", "repr-digest")


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
        params = route_params(route_cfg.paths) if route_cfg is not None else None
        self.path = parse_path(c.path, "path", params=params, rest=True) if c.path is not None else None
        if self.path is not None and route_cfg is not None and (route_cfg.rewrite or route_cfg.strip_prefix):
            raise ValueError(f"path: route {route!r} already sets rewrite/strip_prefix; use one way to rewrite the path")
        refs = (*self.headers.refs, *self.query.refs, *self.fields.refs, *(self.path.refs if self.path else ()))
        # header rules run last; a snapshot lets {header.x} see the headers as received
        self.snapshot_headers = bool(self.headers) and any(r.ns == "header" for r in refs)
        check_params(refs, params)

    def request_header_names(self) -> list[tuple[str, str]]:
        c = self.config
        out = [(f"rename.headers.{old}", old) for old in c.rename.headers]
        out += [("path", r.path[0]) for r in (self.path.refs if self.path else ()) if r.ns == "header"]
        templates: list[tuple[str, Any]] = []
        for op in ("replace", "add", "append"):
            rules = getattr(c, op)
            for kind in ("headers", "query", "body"):
                templates += [(f"{op}.{kind}.{k}", v) for k, v in getattr(rules, kind, {}).items()]
        for key, value in templates:  # {header.x} references, in strings anywhere in a value
            out += [(key, ref.path[0]) for ref in _refs(value, key) if ref.ns == "header"]
        return out

    @hookimpl
    async def transform(self, ctx: Context) -> Response | None:
        req = ctx.request
        resolve = Resolver(ctx, headers=req.headers.copy() if self.snapshot_headers else None)
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
            doc = loads(raw)
        except ValueError as exc:
            return ctx.problem(400, f"request body is not valid JSON: {exc}")
        if not isinstance(doc, (dict, list)):
            return ctx.problem(400, "request body must be a JSON object or array")
        self.fields.apply(doc, resolve)
        new = dumps(doc)
        req.headers.remove(*_STALE_BODY_HEADERS)
        req.headers.set("content-length", str(len(new)))
        req.body = Body(new)
        return None


def _refs(value: Any, where: str) -> list[Ref]:
    """The references of a configured template value (JSON body values: every string in it)."""
    if isinstance(value, str):
        return list(parse(value, where).refs)
    if isinstance(value, list):
        return [r for v in value for r in _refs(v, where)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v, where)]
    return []
