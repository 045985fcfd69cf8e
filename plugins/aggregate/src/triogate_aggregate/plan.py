"""Compiling the config into call plans once, at config load: templates, dependencies, shapes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from triogate.template import (
    Namespace,
    PathTemplate,
    Ref,
    Template,
    check_params,
    parse_header,
    parse_path,
    route_params,
)

from .config import AggregateConfig
from .shape import Shape, ShapeError

__all__ = ["RESP", "BackendPlan", "compile_plans"]

#: {resp.<backend>.<field>}: a field of an earlier backend's JSON response (numbers index arrays)
RESP = Namespace("resp", min_parts=2, usage="{resp.<backend>.<field>}")


@attrs.frozen
class BackendPlan:
    name: str
    upstream: str
    method: str
    target: PathTemplate
    forward_headers: tuple[str, ...]
    headers: tuple[tuple[str, Template], ...]
    timeout: float
    required: bool
    fallback: dict[str, Any] | None  # already shaped
    limit: int
    shape: Shape
    deps: tuple[str, ...]
    request_refs: tuple[Ref, ...]


def compile_plans(cfg: AggregateConfig, upstreams: Iterable[str], route_paths: list[str] | None) -> list[BackendPlan]:
    """Validate cross-references (upstreams, params, dependencies) and build the plans."""
    known_upstreams = set(upstreams)
    params = route_params(route_paths) if route_paths is not None else None
    plans: list[BackendPlan] = []
    for name, b in cfg.backends.items():
        where = f"backends.{name}"
        if b.upstream not in known_upstreams:
            known = ", ".join(sorted(known_upstreams)) or "none defined"
            raise ValueError(f"{where}.upstream: unknown upstream {b.upstream!r} (known: {known})")
        target = parse_path(b.path, f"{where}.path", query=True, extra=[RESP])
        headers = tuple((h.lower(), parse_header(v, f"{where}.headers.{h}", [RESP])) for h, v in b.headers.items())
        refs = list(target.refs)
        for _, t in headers:
            refs.extend(t.refs)
        deps: list[str] = []
        for ref in refs:
            if ref.ns == "resp":
                dep = ref.path[0]
                if dep == name:
                    raise ValueError(f"{where}: {{{ref.text}}} refers to the backend itself")
                if dep not in cfg.backends:
                    raise ValueError(f"{where}: {{{ref.text}}} refers to an unknown backend {dep!r}")
                if dep not in deps:
                    deps.append(dep)
        check_params(refs, params, where)
        shape = Shape.from_config(name, b)
        fallback = None
        if b.fallback is not None:
            try:
                fallback = shape.apply(b.fallback)
            except ShapeError as exc:
                raise ValueError(f"{where}.fallback: {exc}") from None
        plans.append(BackendPlan(
            name=name, upstream=b.upstream, method=b.method, target=target,
            forward_headers=tuple(h.lower() for h in b.forward_headers), headers=headers,
            timeout=b.timeout, required=b.required, fallback=fallback,
            limit=b.max_body_bytes or cfg.max_body_bytes, shape=shape, deps=tuple(deps),
            request_refs=tuple(r for r in refs if r.from_request),
        ))
    _check_cycles(plans)
    return plans


def _check_cycles(plans: list[BackendPlan]) -> None:
    deps = {p.name: p.deps for p in plans}
    state: dict[str, int] = {}  # 1: visiting, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise ValueError(f"backends: dependency cycle {' -> '.join(cycle)}")
        state[name] = 1
        for d in deps[name]:
            visit(d, trail + [name])
        state[name] = 2

    for p in plans:
        visit(p.name, [])
