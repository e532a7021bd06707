"""What a force delete leaves in MAAS, named exactly so an operator (and the orphan sweeper)
can find it: machines with their IPs, the endpoint's VIP and its DNS record."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from domain.maas import Machine

# The event the sagas write when a cluster's endpoint is made; the endpoint's address is read
# back from it, as no other record of it outlives the sagas.
_ENDPOINT_EVENT = re.compile(r"^control-plane endpoint \((?P<mode>[a-z]+)\): (?P<host>\S+)")


def endpoint_event(mode: str, host: str, addresses: list[str]) -> str:
    """The event line that records a cluster's endpoint."""
    line = f"control-plane endpoint ({mode}): {host}"
    return line + (f" -> {', '.join(addresses)}" if addresses else "")


def endpoint_of_event(message: str) -> tuple[str, str] | None:
    """(mode, host) of an endpoint event line, or None for another event."""
    found = _ENDPOINT_EVENT.match(message)
    return (found["mode"], found["host"]) if found else None


class LeftBehind(BaseModel):
    """Everything MAAS may still hold for a cluster that was deleted without its gateway."""

    machines: list[Machine] = Field(default_factory=list)
    vip: str = Field(default="", description="the endpoint IP reserved in MAAS, if any")
    dns_record: str = Field(default="", description="the endpoint's MAAS DNS name, if any")

    def lines(self) -> list[str]:
        """One line per thing left, as the events show it."""
        out = [
            f"machine {m.hostname or m.system_id} (system id {m.system_id}"
            + (f", IP {', '.join(m.ip_addresses)}" if m.ip_addresses else "")
            + ")"
            for m in self.machines
        ]
        if self.vip:
            out.append(f"IP {self.vip} (the endpoint VIP)")
        if self.dns_record:
            out.append(f"DNS record {self.dns_record}")
        return out
