"""The remediation ladder's MAAS steps: power cycle, release for a redeploy, quarantine.

Every step first checks that MAAS still lists the machine under the cluster's agent_name: a
machine someone released or took is never touched. Redeploying a Deployed machine in MAAS
2.x is a release (a deploy of a Deployed machine answers 409) followed by a deploy of the
same machine; here the machine is released without erasing and allocated back by system id
with the cluster's marks, so it is never free for others to take and the workflow's usual
deploy (fresh cloud-init, wait Deployed) follows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.maas import tag_quarantined
from activities.maas_answers import (
    ANY_JSON,
    MACHINE,
    MACHINES,
    STATUS_READY,
    STATUS_RELEASING,
    MaasMachine,
)
from activities.maas_session import MaasSessions
from activities.remediation_models import (
    POWER_CYCLE_MACHINE,
    QUARANTINE_MACHINE,
    RELEASE_FOR_REDEPLOY,
    RemediateMachineInput,
    RemediateMachineResult,
)
from domain.naming import (
    OWNER_DATA_CLUSTER,
    OWNER_DATA_POOL,
    OWNER_DATA_REQUEST,
    QUARANTINE_TAG,
    owner_agent_name,
)
from domain.phases import Reason

log = logging.getLogger(__name__)


class RemediationActivities:
    def __init__(self, sessions: MaasSessions) -> None:
        self.sessions = sessions

    def all(self) -> list[Any]:
        return [self.power_cycle_machine, self.release_for_redeploy, self.quarantine_machine]

    async def _ours(self, input: RemediateMachineInput) -> MaasMachine:
        """The machine's JSON, if MAAS still lists it under the cluster's agent_name."""
        found = await self.sessions.call(
            input.account,
            "Machines",
            "read",
            MACHINES,
            id=[input.system_id],
            agent_name=[owner_agent_name(input.cluster_id)],
        )
        if not found:
            raise ApplicationError(
                f"{input.system_id} is no longer cluster {input.cluster_id}'s in "
                f"{input.account}; it is left alone",
                type=Reason.MACHINE_DEPLOY_FAILED.value,
                non_retryable=True,
            )
        return found[0]

    async def _read(self, input: RemediateMachineInput) -> MaasMachine:
        return await self.sessions.call(
            input.account, "Machine", "read", MACHINE, system_id=input.system_id
        )

    @activity.defn(name=POWER_CYCLE_MACHINE)
    async def power_cycle_machine(self, input: RemediateMachineInput) -> RemediateMachineResult:
        """Hard power off, then on: a hung kernel or kubelet comes back from a cold boot."""
        await self._ours(input)
        comment = f"metalgate remediation: {input.reason}"[:200]
        await self.sessions.call(
            input.account,
            "Machine",
            "power_off",
            ANY_JSON,
            system_id=input.system_id,
            stop_mode="hard",
            comment=comment,
        )
        await self.sessions.call(
            input.account,
            "Machine",
            "power_on",
            ANY_JSON,
            system_id=input.system_id,
            comment=comment,
        )
        return RemediateMachineResult(system_id=input.system_id, detail="powered off and on")

    @activity.defn(name=RELEASE_FOR_REDEPLOY)
    async def release_for_redeploy(self, input: RemediateMachineInput) -> RemediateMachineResult:
        """Release without erase, wait for Ready, and allocate the same machine back."""
        agent = owner_agent_name(input.cluster_id)
        raw = await self._read(input)
        if raw.status not in (STATUS_READY, STATUS_RELEASING):
            await self._ours(input)
            await self.sessions.call(
                input.account,
                "Machine",
                "release",
                ANY_JSON,
                system_id=input.system_id,
                comment=f"metalgate remediation: redeploy ({input.reason})"[:200],
            )
        while raw.status != STATUS_READY:
            await asyncio.sleep(input.poll_interval_seconds)
            raw = await self._read(input)
        await self.sessions.call(
            input.account,
            "Machines",
            "allocate",
            MACHINE,
            system_id=input.system_id,
            agent_name=agent,
            comment=f"metalgate cluster {input.cluster_id}: redeploy",
        )
        marks = {OWNER_DATA_CLUSTER: input.cluster_id, OWNER_DATA_REQUEST: "redeploy"}
        if input.pool:
            marks[OWNER_DATA_POOL] = input.pool
        await self.sessions.call(
            input.account,
            "Machine",
            "set_owner_data",
            ANY_JSON,
            system_id=input.system_id,
            **marks,
        )
        return RemediateMachineResult(
            system_id=input.system_id, detail="released and allocated back for a redeploy"
        )

    @activity.defn(name=QUARANTINE_MACHINE)
    async def quarantine_machine(self, input: RemediateMachineInput) -> RemediateMachineResult:
        """Tag the machine out of every later allocation; without tag rights, mark it broken."""
        try:
            await tag_quarantined(self.sessions, input.account, input.system_id)
        except ApplicationError as error:
            if error.type != Reason.MAAS_AUTH_FAILED.value:
                raise
            await self.sessions.call(
                input.account,
                "Machine",
                "mark_broken",
                ANY_JSON,
                system_id=input.system_id,
                comment=f"metalgate remediation: {input.reason}"[:200],
            )
            return RemediateMachineResult(
                system_id=input.system_id, detail="marked broken (the API key may not manage tags)"
            )
        log.warning("quarantined %s with tag %s: %s", input.system_id, QUARANTINE_TAG, input.reason)
        return RemediateMachineResult(
            system_id=input.system_id, detail=f"quarantined with tag {QUARANTINE_TAG!r}"
        )
