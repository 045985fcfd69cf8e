"""Settings of the traffic-split plugin: ordered rules, each a match and weighted upstreams."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from triogate import fields, setting

__all__ = ["MatchConfig", "RuleConfig", "TrafficSplitConfig", "WeightedUpstream"]

# a cookie name is an RFC 6265 token
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# a Set-Cookie attribute value: visible ASCII except ";" (it would start another attribute)
_COOKIE_PATH = re.compile(r"[\x21-\x3a\x3c-\x7e]+")


def is_cookie_name(value: object) -> bool:
    return isinstance(value, str) and _COOKIE_NAME.fullmatch(value) is not None


def _keys(ok: Callable[[str], bool], expected: str) -> fields.Check:
    """A check of every key of a table (header or cookie names to match)."""

    def find(inst: Any, name: str, value: dict[str, str]) -> Iterator[tuple[str, str]]:
        for key in value:
            if not ok(key):
                yield name, f"expected {expected}, got {key!r}"

    return fields.Check(find)


def _sticky_ok(value: str) -> bool:
    if value in ("consumer", "client-ip", "cookie"):
        return True
    kind, _, name = value.partition(":")
    if kind == "cookie":
        return is_cookie_name(name)
    if kind == "header":
        return fields.is_header_name(name)
    return False


@attrs.define(frozen=True)
class MatchConfig:
    headers: dict[str, str] = setting(
        factory=dict, description="request headers that must have exactly these values (names case-insensitive)",
        validator=_keys(fields.is_header_name, "header names"))
    cookies: dict[str, str] = setting(
        factory=dict, description="cookies that must have exactly these values",
        validator=_keys(is_cookie_name, "cookie names"))
    query: dict[str, str] = setting(
        factory=dict, description="query parameters that must have this value (any occurrence of the name)")
    consumers: list[str] = setting(
        factory=list, description="the authenticated consumer (ctx.principal.consumer) must be one of these")

    def is_empty(self) -> bool:
        return not (self.headers or self.cookies or self.query or self.consumers)


@attrs.define(frozen=True)
class WeightedUpstream:
    name: str = setting(description="an [upstreams.<name>] of the gateway")
    weight: int = setting(
        1, description="share of the rule's requests (relative to the rule's other upstreams; 0 = none)",
        validator=fields.check(lambda w: isinstance(w, int) and not isinstance(w, bool) and w >= 0,
                               "a whole number >= 0"))


@attrs.define(frozen=True)
class RuleConfig:
    upstreams: list[WeightedUpstream] = setting(
        description="where matching requests go: [{ name = \"orders-v2\", weight = 10 }, ...]")

    match: MatchConfig = setting(
        factory=MatchConfig, description="conditions, all of which must hold (AND); none: every request matches")

    def __attrs_post_init__(self) -> None:
        if not self.upstreams:
            raise ValueError("upstreams: expected at least one upstream")
        if all(isinstance(u.weight, int) and u.weight >= 0 for u in self.upstreams) \
                and not any(u.weight > 0 for u in self.upstreams):  # (a bad weight is reported by its field)
            raise ValueError("upstreams: expected at least one upstream with a weight > 0")
        seen: set[str] = set()
        for i, u in enumerate(self.upstreams):
            if u.name in seen:
                raise ValueError(f"upstreams[{i}].name: upstream {u.name!r} is listed twice in this rule")
            seen.add(u.name)


@attrs.define(frozen=True)
class TrafficSplitConfig:
    rules: list[RuleConfig] = setting(
        description="ordered rules; the first whose match holds chooses the upstream; none: the route's upstream")
    sticky: str | None = setting(
        None, description='keep a client on one upstream while weights stay: "consumer", "client-ip", '
                          '"cookie:<name>" (the application\'s cookie), "header:<name>", "cookie" (the plugin sets '
                          'its own); unset: smooth weighted round-robin',
        validator=fields.check(_sticky_ok, '"consumer", "client-ip", "cookie", "cookie:<name>" or "header:<name>"'))
    cookie_name: str = setting(
        "triogate_split", description='name of the cookie the plugin sets with sticky = "cookie"',
        validator=fields.check(is_cookie_name, "a cookie name"))
    cookie_max_age: int = setting(
        86400, description="Max-Age of the plugin's cookie in seconds (0: a session cookie, no Max-Age)",
        validator=fields.check(lambda n: isinstance(n, int) and n >= 0, "a whole number of seconds >= 0"))
    cookie_path: str = setting(
        "/", description="Path of the plugin's cookie",
        validator=fields.check(lambda p: isinstance(p, str) and p.startswith("/") and _COOKIE_PATH.fullmatch(p) is not None,
                               "a path starting with / (no ; or spaces)"))
    cookie_secure: bool = setting(False, description="add Secure to the plugin's cookie (HTTPS-only sites)")

    def __attrs_post_init__(self) -> None:
        if not self.rules:
            raise ValueError("rules: expected at least one rule")
        for i, rule in enumerate(self.rules[:-1]):
            if rule.match.is_empty():
                raise ValueError(f"rules[{i + 1}]: unreachable, rules[{i}] has no match and takes every request "
                                 "(put the default split last)")
