"""Two attempts of one MAAS activity at once (a paused replica resumes late): no surplus."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.maas import MaasActivities
from activities.maas_answers import MaasMachine
from activities.maas_session import MaasSessions
from activities.models import (
    AcquireMachinesInput,
    DeployMachineInput,
    FindOwnedInput,
    ReleaseMachinesInput,
    WaitReleasedInput,
)
from domain.cluster import ErasePolicy, MachineConstraints, NodePool
from domain.naming import OWNER_DATA_INSTALLATION
from domain.phases import Reason
from tests.gateway.conftest import Maas, StartMaas

SMALL = MachineConstraints(min_cpu=2, min_memory_mib=4096)


def attempt(number: int, activity_id: str = "4") -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, attempt=number, activity_id=activity_id, heartbeat_timeout=None
    )
    return env


class PausingSessions(MaasSessions):
    """Pauses after the first allocate, like a gateway replica stopped by SIGSTOP."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        self._allocations = 0

    async def call(self, account: Any, handler: str, action: str, *a: Any, **kw: Any) -> Any:
        result = await super().call(account, handler, action, *a, **kw)
        if (handler, action) == ("Machines", "allocate") and not kw.get("dry_run"):
            self._allocations += 1
            if self._allocations == 1:
                self.paused.set()
                await self.resume.wait()
        return result


# (activity id, attempt) of the late one, then of the one that replaced it: a retry of the
# same activity, or a fresh activity the workflow scheduled after a gateway wait.
@pytest.mark.parametrize("late,current", [(("4", 1), ("4", 2)), (("4", 3), ("7", 1))])
async def test_a_late_acquire_attempt_gives_back_what_it_took(
    maas: Maas, late: tuple[str, int], current: tuple[str, int]
) -> None:
    request = AcquireMachinesInput(
        account=maas.account,
        cluster_id="c-fence",
        request_id="create",
        pools=[NodePool(name="workers", count=3, constraints=SMALL)],
        installation_id="inst-a",
    )
    sessions = PausingSessions()
    stale = asyncio.create_task(
        attempt(late[1], late[0]).run(MaasActivities(sessions).acquire_machines, request)
    )
    await asyncio.wait_for(sessions.paused.wait(), timeout=30)

    # The retry (attempt 2, another replica) adopts the first machine and takes the rest.
    second = await attempt(current[1], current[0]).run(MaasActivities().acquire_machines, request)
    assert len(second.machines) == 3

    sessions.resume.set()
    with pytest.raises(ApplicationError) as superseded:
        await asyncio.wait_for(stale, timeout=30)
    assert superseded.value.type == Reason.ACQUIRE_SUPERSEDED

    found = await attempt(1).run(
        MaasActivities().find_owned, FindOwnedInput(account=maas.account, cluster_id="c-fence")
    )
    held = {m.system_id for m in found.machines if m.status not in ("Releasing", "Ready")}
    assert held == {m.system_id for m in second.machines}
    assert {m.installation_id for m in found.machines} == {"inst-a"}


async def test_marks_name_the_installation_and_old_marks_still_read(maas: Maas) -> None:
    acts = MaasActivities()
    taken = await attempt(1).run(
        acts.acquire_machines,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c-old",
            request_id="create",
            pools=[NodePool(name="workers", count=1, constraints=SMALL)],
        ),
    )
    every = await attempt(1).run(acts.find_owned, FindOwnedInput(account=maas.account))
    old = [m for m in every.machines if m.cluster_id == "c-old"]
    # Marked without an installation (as before installations were named): read as "".
    assert [m.system_id for m in old] == [taken.machines[0].system_id]
    assert old[0].installation_id == ""
    raw = next(m for m in await maas.machines() if m["system_id"] == old[0].system_id)
    assert OWNER_DATA_INSTALLATION not in (raw.get("owner_data") or {})


async def test_a_deploy_answered_409_because_another_attempt_deploys_is_done(
    maas: Maas,
) -> None:
    acts = MaasActivities()
    taken = await attempt(1).run(
        acts.acquire_machines,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c-dep",
            request_id="create",
            pools=[NodePool(name="workers", count=1, constraints=SMALL)],
        ),
    )
    deploy = DeployMachineInput(
        account=maas.account,
        cluster_id="c-dep",
        system_id=taken.machines[0].system_id,
        distro_series="jammy",
        user_data="#cloud-config\n",
    )
    await attempt(1).run(acts.deploy_machine, deploy)
    # The late attempt read the machine before the first one deployed it.
    stale = MaasActivities()
    real_read = stale._read
    reads = 0

    async def read_stale(account: Any, system_id: str) -> MaasMachine:
        nonlocal reads
        reads += 1
        now = await real_read(account, system_id)
        stale = {"status": 10, "status_name": "Allocated"}
        return now.model_copy(update=stale) if reads == 1 else now

    stale._read = read_stale  # type: ignore[method-assign]
    result = await attempt(2).run(stale.deploy_machine, deploy)
    assert result.status in ("Deploying", "Deployed")


async def test_release_reports_erasing_and_wait_released_waits_it_out(
    start_maas: StartMaas,
) -> None:
    maas = await start_maas(release_seconds=1.0)
    acts = MaasActivities()
    taken = await attempt(1).run(
        acts.acquire_machines,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c-rel",
            request_id="create",
            pools=[NodePool(name="workers", count=2, constraints=SMALL)],
        ),
    )
    ids = sorted(m.system_id for m in taken.machines)
    released = await attempt(1).run(
        acts.release_machines,
        ReleaseMachinesInput(
            account=maas.account, cluster_id="c-rel", system_ids=ids, erase_policy=ErasePolicy.QUICK
        ),
    )
    assert sorted(released.released) == ids
    assert sorted(released.in_progress) == ids
    waited = await attempt(1).run(
        acts.wait_released,
        WaitReleasedInput(account=maas.account, cluster_id="c-rel", poll_interval_seconds=0.2),
    )
    assert waited.stuck == []
    assert all(m["status_name"] == "Ready" for m in await maas.machines())
