"""Shared Redis layer for triogate plugins (not a plugin itself).

- :class:`RedisConfig`: an attrs config table to nest in a plugin's ``Config``
  (``redis: RedisConfig = setting(factory=RedisConfig, description=...)``).
- :func:`shared_client`: the started, self-healing :class:`RedisClient` for a config, shared by
  all plugin instances of one loaded gateway config (``await`` it in ``startup``); the core
  closes it with that config. :func:`running_client` is the same client outside a gateway.
- :class:`LuaScript` / :func:`load_script`: server-side scripts, run with
  :meth:`RedisClient.run_script`.
"""

from .client import RedisClient, RedisUnavailable, build_client, running_client, shared_client
from .config import RedisConfig, parse_hostport
from .scripts import LuaScript, load_script

__all__ = [
    "LuaScript", "RedisClient", "RedisConfig", "RedisUnavailable", "build_client", "load_script", "parse_hostport",
    "running_client", "shared_client",
]
