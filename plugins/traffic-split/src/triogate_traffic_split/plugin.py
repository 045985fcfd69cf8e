"""The traffic-split plugin: choose the upstream of each request in ``transform`` (priority 850).

Why 850: auth has run (the ``consumers`` condition and ``sticky = "consumer"`` need
``ctx.principal``); acl (950) and rate-limit (900) have already refused what they refuse, so a
refused request is never counted in a split nor given a sticky cookie; request-transform (800)
has not yet rewritten the request, so rules see the headers, cookies and query the client sent;
cache (100) and aggregate (50) come later and see the chosen upstream.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

import triogate

from .choose import Candidate, SmoothRoundRobin, rendezvous
from .config import MatchConfig, RuleConfig, TrafficSplitConfig

STATE_COOKIE = "traffic-split.set-cookie"
COUNTER = "triogate_traffic_split_requests_total"


class CompiledRule:
    """One rule, ready to test against a request: lower-cased header names, the candidate list."""

    __slots__ = ("candidates", "consumers", "cookies", "headers", "index", "only", "query", "rr")

    def __init__(self, index: int, rule: RuleConfig) -> None:
        m: MatchConfig = rule.match
        self.index = index
        self.headers = [(k.lower(), v) for k, v in m.headers.items()]
        self.cookies = list(m.cookies.items())
        self.query = list(m.query.items())
        self.consumers = frozenset(m.consumers)
        self.candidates: list[Candidate] = [(u.name, u.weight) for u in rule.upstreams]
        positive = [n for n, w in self.candidates if w > 0]
        # a rule with one possible upstream needs no choice (nor a sticky key, nor a cookie)
        self.only = positive[0] if len(positive) == 1 else None
        self.rr = SmoothRoundRobin(self.candidates)

    def matches(self, ctx: triogate.Context) -> bool:
        req = ctx.request
        for name, value in self.headers:
            if req.headers.get(name) != value:
                return False
        if self.cookies:
            jar = req.cookies()
            if any(jar.get(name) != value for name, value in self.cookies):
                return False
        if self.query:
            params = req.query_params()
            if any(value not in params.get(name, ()) for name, value in self.query):
                return False
        if self.consumers:
            principal = ctx.principal
            if principal is None or principal.consumer not in self.consumers:
                return False
        return True


class TrafficSplitPlugin(triogate.Plugin):
    """Ordered rules route each request to one of several weighted upstreams (canary releases)."""

    priority: ClassVar[int] = 850
    Config: ClassVar[type] = TrafficSplitConfig

    def __init__(self, config: TrafficSplitConfig, gateway: triogate.GatewayServices,
                 route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        known = set(gateway.upstreams)
        for i, rule in enumerate(config.rules):
            for j, u in enumerate(rule.upstreams):
                if u.name not in known:
                    names = ", ".join(sorted(known)) or "none defined"
                    raise ValueError(f"rules[{i}].upstreams[{j}].name: unknown upstream {u.name!r} (known: {names})")
        self.rules = [CompiledRule(i, r) for i, r in enumerate(config.rules)]
        self.requests = gateway.counter(
            COUNTER, "Requests by the upstream traffic-split chose, and the rule that chose it "
            '(rule "none": no rule matched, the route\'s own upstream).', ("route", "rule", "upstream"))
        sticky = config.sticky or ""
        self.sticky_kind, _, self.sticky_name = sticky.partition(":")
        if self.sticky_kind == "header":
            self.sticky_name = self.sticky_name.lower()
        elif sticky == "cookie":
            self.sticky_name = config.cookie_name
        self.cookie_attrs = f"; Path={config.cookie_path}" + (
            f"; Max-Age={config.cookie_max_age}" if config.cookie_max_age else "") + (
            "; Secure" if config.cookie_secure else "") + "; HttpOnly; SameSite=Lax"

    def sticky_key(self, ctx: triogate.Context) -> str | None:
        """The request's sticky key, or None (then round-robin). With the plugin's own cookie
        absent, a new random key is made now and sent back as a cookie in ``post_response``."""
        kind = self.sticky_kind
        if kind == "consumer":
            principal = ctx.principal
            # anonymous requests share one consumer: keyed, they would all land on one side of the split
            if principal is None or principal.anonymous:
                return None
            return principal.id  # the consumer; else the credential or the token's subject
        if kind == "client-ip":
            return ctx.client_ip
        if kind == "header":
            return ctx.request.headers.get(self.sticky_name) or None
        if kind == "cookie":
            value = ctx.request.cookies().get(self.sticky_name) or None
            if value is None and self.config.sticky == "cookie":
                value = secrets.token_urlsafe(16)
                ctx.state[STATE_COOKIE] = value
            return value
        return None

    def choose(self, rule: CompiledRule, ctx: triogate.Context) -> str:
        if rule.only is not None:
            return rule.only
        key = self.sticky_key(ctx)
        if key is None:
            return rule.rr.next()
        return rendezvous(key, rule.candidates)

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        route = ctx.route.name if ctx.route is not None else ""
        for rule in self.rules:
            if rule.matches(ctx):
                chosen = self.choose(rule, ctx)
                ctx.use_upstream(chosen)
                ctx.log_extra["split_rule"] = rule.index
                self.requests.inc(route, str(rule.index), chosen)
                return
        # no rule matched: the route's own upstream
        own = ctx.upstream or (ctx.route.upstream if ctx.route is not None else None)
        self.requests.inc(route, "none", own.name if own is not None else "")

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        value: Any = ctx.state.get(STATE_COOKIE)
        if value is not None:
            response.headers.add("set-cookie", f"{self.config.cookie_name}={value}{self.cookie_attrs}")
