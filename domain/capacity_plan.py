"""What a plan answers: per pool, the machines MAAS would hand out, or which constraint fails.

Shared by the gateway activity that computes it, the API that returns it and the CLI that
prints it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ZoneCount(BaseModel):
    zone: str
    machines: int


class PlannedMachine(BaseModel):
    system_id: str
    hostname: str = ""
    zone: str = ""


class Relaxation(BaseModel):
    """Ready machines that miss only this one constraint, so a person sees which to change."""

    constraint: str = Field(description="e.g. zone=az1, tag gpu, min_cpu>=8")
    machines: int
    by_zone: list[ZoneCount] = Field(default_factory=list)


class PoolPlan(BaseModel):
    pool: str
    asked: int = Field(description="machines the pool still needs")
    satisfiable: bool
    matching: int = Field(description="Ready machines left for this pool that match it")
    by_zone: list[ZoneCount] = Field(default_factory=list)
    would_take: list[PlannedMachine] = Field(default_factory=list)
    problem: str = Field(default="", description="why MAAS cannot serve it, when it cannot")
    note: str = Field(
        default="", description="a listed zone without room for its share, when one has none"
    )
    relaxations: list[Relaxation] = Field(default_factory=list)
    summary: str


class CapacityPlan(BaseModel):
    """The answer of a plan; nothing was taken to make it."""

    satisfiable: bool
    pools: list[PoolPlan]
    summary: str


def by_zone(zones: list[str]) -> list[ZoneCount]:
    """Counts per zone, in zone-name order."""
    return [ZoneCount(zone=z, machines=zones.count(z)) for z in sorted(set(zones))]


def zones_text(counts: list[ZoneCount]) -> str:
    return ", ".join(f"{c.machines} in zone {c.zone}" for c in counts)
