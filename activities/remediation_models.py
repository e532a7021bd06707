"""Names, inputs and results of the remediation ladder's MAAS activities (gateway side)."""

from __future__ import annotations

from pydantic import BaseModel

from domain.maas import MaasAccount

POWER_CYCLE_MACHINE = "maas.power_cycle_machine"
RELEASE_FOR_REDEPLOY = "maas.release_for_redeploy"
QUARANTINE_MACHINE = "maas.quarantine_machine"


class RemediateMachineInput(BaseModel):
    """One of the cluster's machines; refused when MAAS says it is no longer the cluster's."""

    account: MaasAccount
    cluster_id: str
    system_id: str
    pool: str = ""
    reason: str = ""
    poll_interval_seconds: float = 2.0


class RemediateMachineResult(BaseModel):
    system_id: str
    # What was done, for the event line ("powered off and on", "quarantined with tag ...").
    detail: str
