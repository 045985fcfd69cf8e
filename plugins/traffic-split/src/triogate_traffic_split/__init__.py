"""Traffic splitting for triogate: rules choose among weighted upstreams (canary releases)."""

from .config import MatchConfig, RuleConfig, TrafficSplitConfig, WeightedUpstream
from .plugin import TrafficSplitPlugin

__version__ = "0.1.0"
__all__ = ["MatchConfig", "RuleConfig", "TrafficSplitConfig", "TrafficSplitPlugin", "WeightedUpstream"]
