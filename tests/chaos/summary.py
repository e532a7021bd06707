"""The summary table a chaos run prints: what was done to the stack and what it left behind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ChaosSummary:
    clusters: int
    seconds: float
    kills: Counter[str]
    pauses: Counter[str]
    failed_restarts: Counter[str]
    faults: dict[str, str]
    outcomes: Counter[str]
    failed_reasons: Counter[str]
    api_retries: Counter[str]
    violations: int
    leaks: int
    surplus: int
    orphan_releases: int
    stragglers: int
    problems: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        rows = [("clusters", str(self.clusters)), ("duration", f"{self.seconds:.0f} s")]
        rows += [(f"kills: {name}", str(n)) for name, n in sorted(self.kills.items())]
        rows.append(("kills: total", str(sum(self.kills.values()))))
        rows += [(f"pauses: {name}", str(n)) for name, n in sorted(self.pauses.items())]
        rows += [
            (f"restart retries: {name}", str(n)) for name, n in sorted(self.failed_restarts.items())
        ]
        rows += [(f"fault: {name}", value) for name, value in self.faults.items()]
        rows += [(f"outcome: {name}", str(n)) for name, n in sorted(self.outcomes.items())]
        rows += [(f"failed: {name}", str(n)) for name, n in sorted(self.failed_reasons.items())]
        rows += [(f"API retries: {name}", str(n)) for name, n in sorted(self.api_retries.items())]
        rows += [
            ("double ownership", str(self.violations)),
            ("orphan sweeps of live clusters", str(self.orphan_releases)),
            ("machines leaked", str(self.leaks)),
            ("surplus machines (MAAS marks beyond the store)", str(self.surplus)),
            ("processes left behind", str(self.stragglers)),
            ("problems", str(len(self.problems))),
        ]
        return rows

    def table(self) -> str:
        rows = self.rows()
        width = max(len(name) for name, _ in rows)
        lines = ["", "chaos run summary", "-" * (width + 12)]
        lines += [f"{name:<{width}}  {value:>8}" for name, value in rows]
        lines.append("-" * (width + 12))
        lines += [f"problem: {p}" for p in self.problems[:120]]
        return "\n".join(lines)
