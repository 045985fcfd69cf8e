"""Lua scripts run atomically on the Redis server (EVALSHA with an EVAL fallback)."""

from __future__ import annotations

import hashlib
from importlib import resources

__all__ = ["LuaScript", "load_script"]


class LuaScript:
    """A Lua script and its SHA1; run it with :meth:`RedisClient.run_script`.

    Scripts must declare every key they touch in ``KEYS`` (Redis Cluster routes on them;
    put a ``{hash tag}`` in the keys of one script so they share a slot).
    """

    __slots__ = ("name", "sha", "source")

    def __init__(self, source: str, name: str = "script") -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<LuaScript {self.name} {self.sha[:12]}>"


def load_script(package: str, filename: str) -> LuaScript:
    """Load ``filename`` shipped inside ``package`` (e.g. ``load_script(__package__, "gcra.lua")``)."""
    source = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return LuaScript(source, name=filename)
