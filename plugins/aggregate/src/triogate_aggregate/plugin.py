"""The aggregate plugin: answer a route from several backends called concurrently.

Runs in the ``transform`` phase with priority 50, so authentication, ACLs and rate
limits have run before any backend is called. Every backend runs in one trio
nursery under the route's ``deadline``; a backend whose path or headers refer to
``{resp.<other>...}`` waits for that one, independent ones run at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import trio
from triogate import BodyTooLarge, Context, GatewayError, Plugin, Response, hookimpl
from triogate.template import Missing, Ref, Resolver, lookup
from triogate_transform_rules import is_json, loads

from .config import AggregateConfig
from .plan import BackendPlan, compile_plans
from .shape import ShapeError, merge

__all__ = ["Aggregate"]

_TIMEOUT_KINDS = frozenset({"timeout", "deadline"})


@attrs.define
class Outcome:
    """What one backend produced: data, or an error kind and detail."""

    data: Any = None  # the parsed JSON body (what {resp.<name>...} reads)
    part: dict[str, Any] | None = None  # the shaped contribution
    error: str | None = None  # timeout, deadline, upstream, status, not_json, invalid_json, too_large, ...
    detail: str = ""
    status: int | None = None
    seconds: float = 0.0

    def details(self) -> dict[str, Any]:
        d: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.status is not None:
            d["status"] = self.status
        return d


class _Run:
    """One request's aggregation: outcomes, completion events and the fail-fast switch."""

    def __init__(self, plugin: Aggregate, ctx: Context) -> None:
        self.plugin = plugin
        self.ctx = ctx
        self.outcomes: dict[str, Outcome] = {}
        self.done = {p.name: trio.Event() for p in plugin.plans}
        self.fatal: tuple[BackendPlan, Outcome] | None = None
        self.nursery: trio.Nursery | None = None
        self.resolve = Resolver(ctx, extra={"resp": self._resp})
        self.prepared: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {}

    # ------------------------------------------------------------ values

    def _resp(self, ref: Ref) -> Any:
        """{resp.<backend>.<field>}: a field of a backend's parsed JSON."""
        outcome = self.outcomes.get(ref.path[0])
        if outcome is None or outcome.data is None:
            raise Missing(ref, f"backend {ref.path[0]} has no data")
        try:
            return lookup(outcome.data, ref.path[1:])
        except KeyError:
            raise Missing(ref, f"no such field in the response of {ref.path[0]}") from None

    # ------------------------------------------------------------ calls

    def fail(self, plan: BackendPlan, outcome: Outcome) -> None:
        self.outcomes[plan.name] = outcome
        fatal = plan.required or self.plugin.fail_all
        if fatal and self.fatal is None:
            self.fatal = (plan, outcome)
            if self.nursery is not None:
                self.nursery.cancel_scope.cancel()

    async def call(self, plan: BackendPlan) -> None:
        started = trio.current_time()
        try:
            for dep in plan.deps:
                await self.done[dep].wait()
                if self.outcomes.get(dep) is None or self.outcomes[dep].data is None:
                    self.fail(plan, Outcome(error="dependency", detail=f"depends on {dep}, which failed"))
                    return
            try:
                prepared = self.prepared.get(plan.name)
                target, headers = prepared or (plan.target.render(self.resolve), self.headers(plan))
            except Missing as exc:
                self.fail(plan, Outcome(error="missing_value", detail=str(exc)))
                return
            outcome = await self.exchange(plan, target, headers)
            outcome.seconds = trio.current_time() - started
            if outcome.error is not None:
                self.fail(plan, outcome)
            else:
                self.outcomes[plan.name] = outcome
        finally:
            if plan.name in self.outcomes:
                self.outcomes[plan.name].seconds = trio.current_time() - started
            self.done[plan.name].set()

    def headers(self, plan: BackendPlan) -> list[tuple[bytes, bytes]]:
        ctx = self.ctx
        out = [(b"accept", b"application/json"),
               (self.plugin.request_id_header, ctx.request_id.encode())]
        req_headers = ctx.request.headers
        for name in plan.forward_headers:
            for value in req_headers.get_all(name):
                out.append((name.encode(), value.encode("latin-1")))
        for name, tmpl in plan.headers:
            out.append((name.encode(), tmpl.render_header(self.resolve)))
        return out

    async def exchange(self, plan: BackendPlan, target: str, headers: list[tuple[bytes, bytes]]) -> Outcome:
        up = self.ctx.gateway.upstream(plan.upstream)
        with trio.move_on_after(plan.timeout) as scope:
            try:
                resp, _ = await up.request(plan.method, target, headers, None, key=up.hash_key(self.ctx))
            except GatewayError as exc:
                kind = "timeout" if exc.status == 504 else "upstream"
                return Outcome(error=kind, detail=exc.detail or "upstream failed")
            try:
                if not 200 <= resp.status <= 299:
                    return Outcome(error="status", detail=f"answered {resp.status}", status=resp.status)
                if not is_json(resp.headers.get("content-type")):
                    return Outcome(error="not_json", status=resp.status,
                                   detail=f"content type {resp.headers.get('content-type') or 'missing'}, not JSON")
                try:
                    content = await resp.body.read(plan.limit)
                except BodyTooLarge:
                    return Outcome(error="too_large", status=resp.status,
                                   detail=f"response body larger than {plan.limit} bytes")
                except GatewayError as exc:
                    return Outcome(error="upstream", detail=exc.detail or "upstream failed mid-body")
            finally:
                with trio.CancelScope(shield=True):
                    await resp.body.aclose()
            try:
                data = loads(content)
            except ValueError as exc:
                return Outcome(error="invalid_json", status=resp.status, detail=f"invalid JSON: {exc}")
            try:
                part = plan.shape.apply(data)
            except ShapeError as exc:
                return Outcome(error="invalid_shape", status=resp.status, detail=str(exc))
            return Outcome(data=data, part=part, status=resp.status)
        assert scope.cancelled_caught
        return Outcome(error="timeout", detail=f"no complete answer within {plan.timeout:g}s")


class Aggregate(Plugin):
    """Call several backends concurrently and answer with one merged JSON document."""

    priority: ClassVar[int] = 50
    Config: ClassVar[type] = AggregateConfig
    answers_requests: ClassVar[bool] = True  # its route needs no upstream

    def __init__(self, config: AggregateConfig, gateway: Any, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        if route is None:
            raise ValueError("aggregate answers one route: configure it under [routes.<name>.plugins.aggregate]")
        route_cfg = gateway.config.routes.get(route)
        self.plans = compile_plans(config, gateway.upstreams, list(route_cfg.paths) if route_cfg else None)
        self.fail_all = config.on_failure == "fail"
        self.request_id_header = gateway.config.gateway.request_id_header.lower().encode()

    def request_header_names(self) -> list[tuple[str, str]]:
        out = []
        for name, b in self.config.backends.items():
            out += [(f"backends.{name}.forward_headers[{i}]", h) for i, h in enumerate(b.forward_headers)]
        for plan in self.plans:  # {header.x} in a backend's path or header templates
            where = f"backends.{plan.name}"
            out += [(f"{where}.path", r.path[0]) for r in plan.target.refs if r.ns == "header"]
            out += [(f"{where}.headers.{h}", r.path[0]) for h, t in plan.headers for r in t.refs if r.ns == "header"]
        return out

    @hookimpl
    async def transform(self, ctx: Context) -> Response:
        run = _Run(self, ctx)
        # Render what depends only on the request now: a required backend that cannot be
        # called with what the client sent is the client's fault (400), before any call.
        for plan in self.plans:
            if plan.deps and not (plan.required or self.fail_all):
                continue
            try:
                if plan.deps:
                    for ref in plan.request_refs:
                        run.resolve(ref)
                else:
                    run.prepared[plan.name] = (plan.target.render(run.resolve), run.headers(plan))
            except Missing as exc:
                if plan.required or self.fail_all:
                    return ctx.problem(400, f"backend {plan.name}: {exc}")
        with trio.move_on_after(self.config.deadline) as deadline:
            async with trio.open_nursery() as nursery:
                run.nursery = nursery
                for plan in self.plans:
                    nursery.start_soon(run.call, plan)
        if deadline.cancelled_caught:
            for plan in self.plans:
                if plan.name not in run.outcomes:
                    run.fail(plan, Outcome(error="deadline", seconds=self.config.deadline,
                                           detail=f"aggregation deadline of {self.config.deadline:g}s reached"))
        return self.answer(ctx, run)

    def answer(self, ctx: Context, run: _Run) -> Response:
        cfg = self.config
        ctx.log_extra["aggregate"] = ",".join(
            f"{p.name}:{o.error or o.status}:{o.seconds * 1000:.0f}ms"
            for p in self.plans if (o := run.outcomes.get(p.name)) is not None)
        errors = {p.name: o.details() for p in self.plans if (o := run.outcomes.get(p.name)) and o.error}
        if run.fatal is not None:
            plan, outcome = run.fatal
            if outcome.error in _TIMEOUT_KINDS:
                status = 504
            elif outcome.error == "status" and outcome.status == 404 and plan.required:
                status = 404
            else:
                status = 502
            extra: dict[str, Any] = {"backend": plan.name}
            if cfg.error_details:
                extra["errors"] = errors
            return ctx.problem(status, f"backend {plan.name}: {outcome.detail}",
                               headers=[("triogate-completed", "false")], **extra)
        parts = []
        for plan in self.plans:
            o = run.outcomes[plan.name]
            if o.part is not None:
                parts.append(o.part)
            elif plan.fallback is not None:
                errors[plan.name]["fallback"] = True
                parts.append(plan.fallback)
        doc, conflicts = merge(parts, cfg.conflict)
        if conflicts:
            ctx.log_extra["aggregate_conflicts"] = ",".join(sorted(set(conflicts)))
        headers = [("triogate-completed", "false" if errors else "true")]
        if errors:
            headers.append(("cache-control", "no-store"))
            if cfg.error_details:
                doc[cfg.error_key] = errors
        return Response.json(doc, cfg.status, headers=headers)
