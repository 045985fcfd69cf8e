"""Which origins, methods and headers a CORS config allows, precomputed at config load."""

from __future__ import annotations

import re

from .config import CorsConfig


class Policy:
    """Fast answers for one config: is an origin allowed, what to send back."""

    __slots__ = (
        "any_origin",
        "credentials",
        "exact",
        "exposed_value",
        "headers",
        "headers_value",
        "max_age_value",
        "methods",
        "methods_value",
        "reflect_headers",
        "regexes",
    )

    def __init__(self, cfg: CorsConfig) -> None:
        self.any_origin = "*" in cfg.origins
        self.exact = frozenset(o for o in cfg.origins if o != "*")
        self.regexes = [re.compile(p) for p in cfg.origin_regexes]
        self.methods = frozenset(cfg.methods)
        self.methods_value = ", ".join(cfg.methods)
        named = [h for h in cfg.headers if h != "*"]
        self.reflect_headers = not named or "*" in cfg.headers
        self.headers = frozenset(h.lower() for h in named)
        self.headers_value = ", ".join(named)
        self.exposed_value = ", ".join(cfg.exposed_headers)
        self.credentials = cfg.credentials
        self.max_age_value = str(cfg.max_age) if cfg.max_age is not None else None

    def origin_allowed(self, origin: str) -> bool:
        if self.any_origin or origin in self.exact:
            return True
        return any(r.fullmatch(origin) for r in self.regexes)

    def allow_origin_value(self, origin: str) -> str:
        """``*`` only for any-origin without credentials; otherwise the origin itself (never ``*``)."""
        return "*" if self.any_origin and not self.credentials else origin

    def varies_by_origin(self) -> bool:
        return not (self.any_origin and not self.credentials)

    def headers_allowed(self, requested: list[str]) -> bool:
        return self.reflect_headers or all(h.lower() in self.headers for h in requested)
