"""Allocation constraints: parsed from `op=allocate` parameters, validated as MAAS does."""

from __future__ import annotations

from multidict import MultiDictProxy
from pydantic import BaseModel

from maas_emulator.api.forms import listed
from maas_emulator.errors import BadRequest
from maas_emulator.models import Machine
from maas_emulator.state import State

KNOWN_ARCHITECTURES = {"amd64", "arm64", "armhf", "i386", "ppc64el", "s390x"}
# Parameters that steer allocation but do not select machines, so no-match messages skip them.
NOT_CONSTRAINTS = {"op", "agent_name", "comment", "dry_run", "verbose", "bridge_all"}


class Constraints(BaseModel):
    name: str | None = None
    system_id: str | None = None
    arch: list[str] = []
    cpu_count: float | None = None
    mem: float | None = None
    tags: list[str] = []
    not_tags: list[str] = []
    zone: str | None = None
    not_in_zone: list[str] = []
    pool: str | None = None
    not_in_pool: list[str] = []

    def matches(self, m: Machine) -> bool:
        return (
            (self.name is None or self.name in (m.hostname, f"{m.hostname}.{m.domain}"))
            and (self.system_id is None or self.system_id == m.system_id)
            and (not self.arch or any(_arch_matches(a, m.architecture) for a in self.arch))
            and (self.cpu_count is None or m.cpu_count >= self.cpu_count)
            and (self.mem is None or m.memory >= self.mem)
            and all(t in m.tags for t in self.tags)
            and not any(t in m.tags for t in self.not_tags)
            and (self.zone is None or m.zone == self.zone)
            and m.zone not in self.not_in_zone
            and (self.pool is None or m.pool == self.pool)
            and m.pool not in self.not_in_pool
        )

    def resolved(self) -> str:
        """MAAS's "resolved to" form, e.g. `cpu_count=4.0 tags=a,b zone=z1`."""
        parts = []
        for key, value in self.model_dump(exclude_defaults=True).items():
            shown = ",".join(value) if isinstance(value, list) else value
            parts.append(f"{key}={shown}")
        return " ".join(parts)


def _arch_matches(wanted: str, actual: str) -> bool:
    return wanted == actual or ("/" not in wanted and actual.split("/")[0] == wanted)


def parse_constraints(params: MultiDictProxy[str], state: State) -> Constraints:
    errors: dict[str, list[str]] = {}
    constraints = Constraints(
        name=params.get("name") or None,
        system_id=params.get("system_id") or None,
        arch=listed(params, "arch"),
        cpu_count=_number(params, "cpu_count", errors),
        mem=_number(params, "mem", errors),
        tags=listed(params, "tags"),
        not_tags=listed(params, "not_tags"),
        zone=params.get("zone") or None,
        not_in_zone=listed(params, "not_in_zone"),
        pool=params.get("pool") or None,
        not_in_pool=listed(params, "not_in_pool"),
    )
    for field in ("tags", "not_tags"):
        unknown = [t for t in getattr(constraints, field) if t not in state.tags]
        if unknown:
            errors[field] = [f"No such tag(s): {', '.join(repr(t) for t in unknown)}."]
    if constraints.zone is not None and constraints.zone not in state.zones:
        errors["zone"] = [f"No such zone: '{constraints.zone}'."]
    unknown_zones = [z for z in constraints.not_in_zone if z not in state.zones]
    if unknown_zones:
        errors["not_in_zone"] = [f"No such zone(s): {', '.join(unknown_zones)}."]
    if constraints.pool is not None and constraints.pool not in state.pools:
        errors["pool"] = [f"No such pool: '{constraints.pool}'."]
    unknown_pools = [p for p in constraints.not_in_pool if p not in state.pools]
    if unknown_pools:
        errors["not_in_pool"] = [f"No such pool(s): {', '.join(unknown_pools)}."]
    if any(a.split("/")[0] not in KNOWN_ARCHITECTURES for a in constraints.arch):
        errors["arch"] = ["Architecture not recognised."]
    if errors:
        raise BadRequest(errors)
    return constraints


def no_match_message(params: MultiDictProxy[str], constraints: Constraints) -> str:
    given = sorted(
        (key, params.getall(key)) for key in set(params.keys()) if key not in NOT_CONSTRAINTS
    )
    return (
        f"No available machine matches constraints: {given} "
        f'(resolved to "{constraints.resolved()}")'
    )


def _number(params: MultiDictProxy[str], name: str, errors: dict[str, list[str]]) -> float | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        errors[name] = [f"Invalid number: {text!r}"]
        return None
