"""The request-size-limit plugin: Content-Length checked up front, chunked bodies capped while they stream.

Runs in ``pre_route`` (priority 1950) so the limit already applies when auth or
transform plugins read the body. Nothing is buffered: a body with a length within
the limit passes untouched; a body without a length is wrapped so the read that
crosses the limit raises ``triogate.BodyTooLarge``, which the core answers with 413
and ``Connection: close`` (the rest of the upload is never read).
"""

from __future__ import annotations

import triogate

from .config import RequestSizeLimitConfig
from .limit import capped


class RequestSizeLimitPlugin(triogate.Plugin):
    priority = 1950
    Config = RequestSizeLimitConfig

    def __init__(self, config: RequestSizeLimitConfig, gateway: triogate.GatewayServices,
                 route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.limit = config.max_bytes
        self.cap = capped(config.max_bytes)

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> triogate.Response | None:
        body = ctx.request.body
        if body.length is not None:
            if body.length > self.limit:
                return ctx.problem(413, f"request body larger than {self.limit} bytes",
                                   headers=[("connection", "close")])
            return None
        if self.config.require_content_length:
            return ctx.problem(411, "a Content-Length is required for request bodies on this route",
                               headers=[("connection", "close")])
        ctx.request.body = body.wrap(self.cap)
        return None
