"""Failure domains: which listed MAAS zone a pool's next machine comes from.

Each pick goes to the listed zone that holds the fewest of the pool's machines (those the
cluster already runs plus those picked so far) among the zones with a free matching machine;
ties go to the zone listed first. So control-plane nodes never share a zone while another
listed zone has room, workers stay balanced, and a scale-up fills the emptiest zones first.
A zone that was due but had no free machine is remembered, for the cluster's events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Zoned(Protocol):
    @property
    def zone(self) -> str: ...


M = TypeVar("M", bound=Zoned)


class ZoneSpread:
    """The zone counts of one pool while its machines are picked; a no-op without zones."""

    def __init__(self, zones: list[str], held: Iterable[str] = ()) -> None:
        self.zones = list(zones)
        already = Counter(held)
        self.counts = {z: already[z] for z in self.zones}
        self.passed_over: list[str] = []

    def rank(self, machines: list[M]) -> list[M]:
        """`machines` in the order the next pick tries them: the emptiest zone's first."""
        if not self.zones:
            return list(machines)
        return sorted(machines, key=lambda m: (self.counts[m.zone], self.zones.index(m.zone)))

    def took(self, zone: str) -> None:
        """Count a pick; the zones it passed over had no free machine (rank puts them first)."""
        if not self.zones:
            return
        fewest = min(self.counts.values())
        if self.counts[zone] > fewest:
            for z in self.zones:
                if self.counts[z] == fewest and z not in self.passed_over:
                    self.passed_over.append(z)
        self.counts[zone] += 1

    def order(self, machines: list[M], picks: int) -> list[M]:
        """`machines` with the first `picks` in the order successive picks take them."""
        remaining = list(machines)
        ordered: list[M] = []
        while remaining and len(ordered) < picks:
            best = self.rank(remaining)[0]
            remaining.remove(best)
            ordered.append(best)
            self.took(best.zone)
        return ordered + remaining

    def note(self, pool: str) -> str | None:
        """The event line when a zone had no room, or None."""
        if not self.passed_over:
            return None
        spread = ", ".join(f"{z}: {n}" for z, n in self.counts.items())
        return (
            f"pool {pool}: no free matching machine in zone {', '.join(self.passed_over)}, "
            f"so its share went to the other zones ({spread})"
        )
