"""Choosing one upstream of a rule: by a sticky key (weighted rendezvous hashing) or round-robin.

A sticky key is hashed with every candidate's name into a point u in (0, 1); the candidate with
the smallest ``-ln(u) / weight`` wins. That is an exponential race, so candidate i wins for
exactly weight_i / total of the keys, with no table to store or share between workers and
gateways. Changing weights moves only the keys that must move: raising one weight (or lowering
the others) only moves keys *to* that upstream, and the order of the list does not matter.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

__all__ = ["Candidate", "SmoothRoundRobin", "rendezvous"]

Candidate = tuple[str, int]  # (upstream name, weight)


def _point(key: str, name: str) -> float:
    """A stable point in (0, 1) for (key, upstream): the same in every process and release."""
    digest = hashlib.blake2b(f"{name}\0{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def rendezvous(key: str, candidates: Sequence[Candidate]) -> str:
    """The candidate that key ``key`` sticks to (weights 0 never win)."""
    best_name, best_score = "", math.inf
    for name, weight in candidates:
        if weight <= 0:
            continue
        score = -math.log(_point(key, name)) / weight
        if score < best_score:
            best_name, best_score = name, score
    return best_name


class SmoothRoundRobin:
    """nginx's smooth weighted round-robin: exact shares over every total-weight requests, interleaved.

    90/10 sends requests 1-9 to the first upstream and the 10th to the second, rather than bursts;
    the state is per plugin instance (a reload starts a new cycle).
    """

    __slots__ = ("candidates", "current", "total")

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.candidates = [(n, w) for n, w in candidates if w > 0]
        self.current = [0] * len(self.candidates)
        self.total = sum(w for _, w in self.candidates)

    def next(self) -> str:
        best = 0
        for i, (_, weight) in enumerate(self.candidates):
            self.current[i] += weight
            if self.current[i] > self.current[best]:
                best = i
        self.current[best] -= self.total
        return self.candidates[best][0]
