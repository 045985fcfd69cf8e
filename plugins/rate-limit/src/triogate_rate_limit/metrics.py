"""Per-process counters for other plugins (e.g. a metrics exporter), a shared resource of the core.

    stats = await stats_of(gateway)                 # a RateLimitStats, shared by every instance
    stats.totals["limited"]                         # 429s answered by this process
    stats.by_instance["rate-limit@users"]["unavailable_allowed"]

Events: ``allowed``, ``limited`` (429), ``unavailable_allowed`` (Redis down, let through
because ``fault_tolerant``), ``unavailable_rejected`` (Redis down, 503). The object lives as
long as the gateway process, across config reloads.
"""

from __future__ import annotations

from triogate import GatewayServices

__all__ = ["EVENTS", "STATS_KEY", "RateLimitStats", "stats_of"]

EVENTS = ("allowed", "limited", "unavailable_allowed", "unavailable_rejected")


class RateLimitStats:
    def __init__(self) -> None:
        self.totals: dict[str, int] = dict.fromkeys(EVENTS, 0)
        self.by_instance: dict[str, dict[str, int]] = {}

    def count(self, instance: str, event: str) -> None:
        self.totals[event] += 1
        per = self.by_instance.get(instance)
        if per is None:
            per = self.by_instance[instance] = dict.fromkeys(EVENTS, 0)
        per[event] += 1


STATS_KEY = ("triogate_rate_limit", "stats")


async def stats_of(gateway: GatewayServices) -> RateLimitStats:
    """This process's :class:`RateLimitStats` (``gateway.shared`` with ``scope="process"``)."""
    return await gateway.shared(STATS_KEY, RateLimitStats, scope="process")
