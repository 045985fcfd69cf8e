"""Counters plugins declare (``GatewayServices.counter``) and metrics exporters read.

The core has no metrics library: a plugin counts what only it knows (a mirrored copy that
failed after the response went out, a fallback and why) in a :class:`Counter`, and an
exporter (the prometheus plugin) reads every counter of :class:`Counters` when scraped.
One :class:`Counters` per gateway process, the same across reloads, so a count never goes
back when a reload makes new plugin instances.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["Counter", "Counters"]

_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*_total")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Counter:
    """A monotonic count per combination of label values (label values must stay few: config names,
    a fixed set of outcomes; never a client's input)."""

    __slots__ = ("_values", "help", "labels", "name")

    def __init__(self, name: str, help: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *values: str, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0) to the count of these label values, given in ``labels`` order."""
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name}: expected {len(self.labels)} label values {self.labels}, got {values!r}")
        if amount < 0:
            raise ValueError(f"{self.name}: a counter only goes up, got {amount}")
        self._values[values] = self._values.get(values, 0.0) + amount

    def value(self, *values: str) -> float:
        """The count of these label values (0 when never counted)."""
        return self._values.get(values, 0.0)

    def samples(self) -> dict[tuple[str, ...], float]:
        """Every label-value combination counted so far, with its count."""
        return dict(self._values)

    def __repr__(self) -> str:
        return f"<Counter {self.name} {self.labels}>"


class Counters:
    """The counters of one gateway process, by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Counter] = {}

    def counter(self, name: str, help: str, labels: tuple[str, ...] | list[str] = ()) -> Counter:
        """The counter ``name`` (Prometheus style: ``<distribution>_<what>_total``), made on first use.

        Asking again (another route's instance, or after a reload) returns the same counter, so
        counts add up; asking with other labels is a programming error (``ValueError``).
        """
        labels = tuple(labels)
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"counter name {name!r}: expected letters, digits and _, ending in _total")
        bad = [n for n in labels if not _LABEL_NAME.fullmatch(n) or n.startswith("__")]
        if bad:
            raise ValueError(f"counter {name}: invalid label names {bad}")
        found = self._by_name.get(name)
        if found is None:
            found = self._by_name[name] = Counter(name, help, labels)
        elif found.labels != labels:
            raise ValueError(f"counter {name} exists with labels {found.labels}, asked with {labels}")
        return found

    def __iter__(self) -> Iterator[Counter]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)
