"""Per-process counters in ``gateway.extras["rate-limit"]`` for other plugins (e.g. a metrics exporter).

    stats = gateway.extras["rate-limit"]          # a RateLimitStats, shared by every instance
    stats.totals["limited"]                         # 429s answered by this process
    stats.by_instance["rate-limit@users"]["unavailable_allowed"]

Events: ``allowed``, ``limited`` (429), ``unavailable_allowed`` (Redis down, let through
because ``fault_tolerant``), ``unavailable_rejected`` (Redis down, 503). The object lives as
long as the gateway process, across config reloads.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EVENTS", "RateLimitStats"]

EVENTS = ("allowed", "limited", "unavailable_allowed", "unavailable_rejected")


class RateLimitStats:
    def __init__(self) -> None:
        self.totals: dict[str, int] = dict.fromkeys(EVENTS, 0)
        self.by_instance: dict[str, dict[str, int]] = {}
        #: memory backends by instance identity, so a reload with the same settings keeps the counters
        self.memory_backends: dict[tuple[str, str], Any] = {}

    def count(self, instance: str, event: str) -> None:
        self.totals[event] += 1
        per = self.by_instance.get(instance)
        if per is None:
            per = self.by_instance[instance] = dict.fromkeys(EVENTS, 0)
        per[event] += 1
