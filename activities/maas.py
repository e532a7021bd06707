"""MAAS activities, run only by gateway workers (`gateway.<id>` or `gateway.system`).

Ownership marks (see domain.naming): every machine a cluster takes is allocated with
`agent_name = owner_agent_name(cluster_id)` and a comment naming cluster and request, then
gets owner_data {cluster, request, pool}. Every activity looks MAAS up by those marks first,
so a retry after a crash finds what the lost attempt did instead of repeating it.

Fencing: two attempts of one acquire may run at once (a paused gateway replica resumes
after its heartbeat timeout while another replica retries). Each attempt writes its fence
token (activity id, attempt: the workflow schedules a fresh activity after a gateway wait,
so both grow) into the marks of the machines it takes or adopts, and before every mark
looks for a newer token on the request; a late attempt that finds one gives back what it
took and stops. The saga compares MAAS with what it knows after acquire and releases the rest.

Quarantine: a machine whose deployment failed gets the QUARANTINE_TAG tag. A tag survives
release (MAAS clears owner, agent_name and owner_data, never tags), so the saga may release
the machine as usual and it is still never handed out again: every allocate passes the tag
in `not_tags`. An operator returns the machine to service by removing the tag. Tags need
MAAS admin rights; with a non-admin key we fall back to MAAS's Broken state, which also
keeps the machine out of allocation until an operator marks it fixed.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from maas.client.bones import CallError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.maas_answers import (
    ANY_JSON,
    MACHINE,
    MACHINES,
    NAMED,
    ONE_NAMED,
    RELEASED_OR_RELEASING,
    RELEASING,
    STATUS_DEPLOYED,
    STATUS_DEPLOYING,
    STATUS_FAILED_DEPLOYMENT,
    STATUS_READY,
    VERSION,
    MaasMachine,
)
from activities.maas_capacity import allocate_params, matches, plan_capacity, zones_problem
from activities.maas_endpoint import EndpointActivities
from activities.maas_plan import PlanActivities
from activities.maas_session import (
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_NOT_FOUND,
    MaasSessions,
    call_error_text,
)
from activities.maas_watch import MachineWatcher
from activities.models import (
    ACQUIRE_MACHINES,
    CHECK_ACCOUNT,
    DEPLOY_MACHINE,
    FIND_OWNED,
    RELEASE_MACHINES,
    WAIT_DEPLOYED,
    WAIT_RELEASED,
    AcquireMachinesInput,
    AcquireMachinesResult,
    CheckAccountInput,
    CheckAccountResult,
    DeployMachineInput,
    DeployMachineResult,
    FindOwnedInput,
    FindOwnedResult,
    OwnedMachine,
    ReleaseMachinesInput,
    ReleaseMachinesResult,
    WaitDeployedInput,
    WaitDeployedResult,
    WaitReleasedInput,
    WaitReleasedResult,
)
from activities.zone_spread import ZoneSpread
from domain.cluster import ErasePolicy, NodePool
from domain.maas import MaasAccount, Machine
from domain.naming import (
    OWNER_DATA_ATTEMPT,
    OWNER_DATA_CLUSTER,
    OWNER_DATA_INSTALLATION,
    OWNER_DATA_POOL,
    OWNER_DATA_REQUEST,
    QUARANTINE_TAG,
    owner_agent_name,
)
from domain.phases import Reason

log = logging.getLogger(__name__)

ERASE_PARAMS: dict[ErasePolicy, dict[str, bool]] = {
    ErasePolicy.NONE: {},
    ErasePolicy.QUICK: {"erase": True, "quick_erase": True},
    ErasePolicy.SECURE: {"erase": True, "secure_erase": True},
}


async def tag_quarantined(sessions: MaasSessions, account: MaasAccount, system_id: str) -> None:
    """Tag the machine out of every later allocation (the tag is made when MAAS lacks it)."""
    try:
        await sessions.call(account, "Tag", "read", ONE_NAMED, name=QUARANTINE_TAG)
    except CallError as error:
        if error.status != HTTP_NOT_FOUND:
            raise
        await sessions.call(
            account,
            "Tags",
            "create",
            ANY_JSON,
            name=QUARANTINE_TAG,
            comment="metalgate: machines that failed deployment or remediation; remove to reuse",
        )
    await sessions.call(
        account, "Tag", "update_nodes", ANY_JSON, name=QUARANTINE_TAG, add=[system_id]
    )


class MaasActivities:
    """The gateway's MAAS activities; `sessions` is shared so the heartbeat sees reachability,
    and `watcher` is the one reader of machines in transition for every waiting activity."""

    def __init__(self, sessions: MaasSessions | None = None) -> None:
        self.sessions = sessions or MaasSessions()
        self.watcher = MachineWatcher(self.sessions)
        self.endpoints = EndpointActivities(self.sessions)
        self.planner = PlanActivities(self.sessions)

    def all(self) -> list[Any]:
        """Every activity, for `Worker(activities=...)`."""
        return [
            self.acquire_machines,
            self.deploy_machine,
            self.wait_deployed,
            self.release_machines,
            self.wait_released,
            self.find_owned,
            self.check_account,
            *self.endpoints.all(),
            *self.planner.all(),
        ]

    async def _owned(self, account: MaasAccount, cluster_id: str) -> list[MaasMachine]:
        agent = owner_agent_name(cluster_id)
        return await self.sessions.call(account, "Machines", "read", MACHINES, agent_name=[agent])

    # --- acquire -------------------------------------------------------------------------

    @activity.defn(name=ACQUIRE_MACHINES)
    async def acquire_machines(self, input: AcquireMachinesInput) -> AcquireMachinesResult:
        """Take every machine the request asks for, or nothing new if it cannot all fit.

        A pool with zones is spread over them (activities.zone_spread), counting the machines
        the cluster already runs in each; a zone without room is named in `notes`.
        """
        attempt = _fence_token()
        owned = await self._owned(input.account, input.cluster_id)
        held = await self._held_by_request(input, attempt, owned)
        needs = {p.name: p.count for p in input.pools}
        for machine in held:
            needs[machine.pool] = needs.get(machine.pool, 0) - 1
        if all(n <= 0 for n in needs.values()):
            return AcquireMachinesResult(machines=held)

        tags = await self.sessions.call(input.account, "Tags", "read", NAMED)
        quarantine = any(t.name == QUARANTINE_TAG for t in tags)
        wanted = [p for p in input.pools if needs[p.name] > 0]
        zones: set[str] = set()
        if any(p.constraints.zones for p in wanted):
            zones = {
                z.name for z in await self.sessions.call(input.account, "Zones", "read", NAMED)
            }
        for pool in wanted:
            await self._validate_constraints(input.account, pool, quarantine, zones)
        # Only Ready machines can be taken; filtering in MAAS keeps this read small on a
        # busy fleet instead of costing every acquire a read of every machine.
        ready = await self.sessions.call(
            input.account, "Machines", "read", MACHINES, status="ready"
        )
        held_zones = _zones_held(input, owned, held)
        plans, shortfalls = plan_capacity(
            needs,
            input.pools,
            ready,
            set(input.exclude_system_ids),
            order=f"{input.cluster_id}/{input.request_id}",
            held_zones=held_zones,
        )
        if shortfalls:
            raise ApplicationError(
                f"not enough machines in {input.account}: " + "; ".join(shortfalls),
                type=Reason.INSUFFICIENT_CAPACITY.value,
                non_retryable=True,
            )

        by_id = {m.system_id: m for m in ready}
        taken = {m.system_id for m in held}
        acquired = list(held)
        mine: list[str] = []
        notes: list[str] = []
        for plan in plans:
            spread = ZoneSpread(plan.pool.constraints.zones, held_zones.get(plan.pool.name, []))
            for _ in range(plan.needed):
                # Ranked again for each pick: a candidate lost to a concurrent allocation
                # leaves the next pick to the zone that is emptiest now.
                free = [by_id[sid] for sid in plan.candidates if sid not in taken]
                machine = await self._allocate_one(
                    input, plan.pool, spread.rank(free), taken, quarantine, attempt, mine
                )
                spread.took(by_id[machine.system_id].zone)
                taken.add(machine.system_id)
                acquired.append(machine)
                mine.append(machine.system_id)
            note = spread.note(plan.pool.name)
            if note:
                notes.append(note)
        await self._fence(input, attempt, mine)
        log.info(
            "cluster %s request %s holds %d machine(s)%s",
            input.cluster_id,
            input.request_id,
            len(acquired),
            "".join(f"; {n}" for n in notes),
        )
        return AcquireMachinesResult(machines=acquired, notes=notes)

    async def _held_by_request(
        self, input: AcquireMachinesInput, attempt: Fence, owned: list[MaasMachine]
    ) -> list[Machine]:
        """Machines this request already holds, adopting any an interrupted attempt left
        without owner_data (allocated, then the worker died before marking it).

        A retry re-marks what it adopts with its attempt: the fence an older attempt still
        running sees at its next allocation.
        """
        held: list[Machine] = []
        unmarked: list[MaasMachine] = []
        for found in owned:
            data = found.owner_data
            request = data.get(OWNER_DATA_REQUEST)
            if request == input.request_id:
                held.append(found.machine())
                if _attempt_of(data) < attempt:
                    await self._mark(input, found.system_id, data.get(OWNER_DATA_POOL), attempt)
            elif request is None:
                unmarked.append(found)
        counts = {p.name: sum(1 for m in held if m.pool == p.name) for p in input.pools}
        for found in unmarked:
            pool = _pool_for(found, input.pools, counts)
            await self._mark(input, found.system_id, pool.name, attempt)
            counts[pool.name] += 1
            held.append(found.machine().model_copy(update={"pool": pool.name}))
            log.info("adopted %s for cluster %s", found.system_id, input.cluster_id)
        for machine in held:
            machine.request_id = input.request_id
        return held

    async def _fence(
        self,
        input: AcquireMachinesInput,
        attempt: Fence,
        mine: list[str],
        just_taken: str | None = None,
    ) -> None:
        """Stop a late attempt: a newer attempt of this request marked machines meanwhile.

        Only machines still carrying this attempt's mark go back (and `just_taken` if still
        unmarked): the newer attempt adopted and re-marked the others, and the workflow knows
        them from its answer.
        """
        owned = await self._owned(input.account, input.cluster_id)
        ours = [m for m in owned if m.owner_data.get(OWNER_DATA_REQUEST) == input.request_id]
        newest = max((_attempt_of(m.owner_data) for m in ours), default=(0, 0))
        if newest <= attempt:
            return
        give_back = [
            m.system_id
            for m in ours
            if m.system_id in mine and _attempt_of(m.owner_data) == attempt
        ] + [
            m.system_id
            for m in owned
            if m.system_id == just_taken and not m.owner_data.get(OWNER_DATA_REQUEST)
        ]
        for system_id in give_back:
            await self.sessions.call(
                input.account,
                "Machine",
                "release",
                ANY_JSON,
                system_id=system_id,
                comment=f"metalgate: superseded acquire attempt {attempt} of cluster "
                f"{input.cluster_id} request {input.request_id}",
            )
        log.warning(
            "cluster %s request %s: attempt %s superseded by attempt %s; gave back %s",
            input.cluster_id,
            input.request_id,
            attempt,
            newest,
            ", ".join(give_back) or "nothing",
        )
        raise ApplicationError(
            f"acquire attempt {attempt} was superseded by attempt {newest}",
            type=Reason.ACQUIRE_SUPERSEDED.value,
            non_retryable=True,
        )

    async def _validate_constraints(
        self, account: MaasAccount, pool: NodePool, quarantine: bool, zones: set[str]
    ) -> None:
        """Check the zone names against MAAS's zones, and ask MAAS (dry run) whether the tag
        and pool names exist."""
        problem = zones_problem(pool.constraints, zones)
        if problem:
            raise ApplicationError(
                f"pool {pool.name!r}: {account} has {problem}",
                type=Reason.INVALID_CONSTRAINTS.value,
                non_retryable=True,
            )
        try:
            await self.sessions.call(
                account,
                "Machines",
                "allocate",
                ANY_JSON,
                dry_run=True,
                **allocate_params(pool.constraints, quarantine=quarantine),
            )
        except CallError as error:
            if error.status == HTTP_BAD_REQUEST:
                raise ApplicationError(
                    f"pool {pool.name!r}: {account} rejects the constraints: "
                    f"{call_error_text(error, account)}",
                    type=Reason.INVALID_CONSTRAINTS.value,
                    non_retryable=True,
                ) from None
            if error.status != HTTP_CONFLICT:  # 409: nothing free now; counted next.
                raise

    async def _allocate_one(
        self,
        input: AcquireMachinesInput,
        pool: NodePool,
        candidates: list[MaasMachine],
        taken: set[str],
        quarantine: bool,
        attempt: Fence,
        mine: list[str],
    ) -> Machine:
        """Allocate one planned candidate by system id; on a lost race try the next one."""
        for candidate in candidates:
            system_id = candidate.system_id
            if system_id in taken:
                continue
            taken.add(system_id)
            try:
                allocated = await self.sessions.call(
                    input.account,
                    "Machines",
                    "allocate",
                    MACHINE,
                    system_id=system_id,
                    agent_name=owner_agent_name(input.cluster_id),
                    comment=f"metalgate cluster {input.cluster_id} request {input.request_id} "
                    f"pool {pool.name}",
                    **allocate_params(
                        pool.constraints,
                        quarantine=quarantine,
                        zone=candidate.zone if pool.constraints.zones else None,
                    ),
                )
            except CallError as error:
                if error.status == HTTP_CONFLICT:
                    log.info("%s was taken by someone else; trying the next", system_id)
                    continue
                raise
            # Checked before marking: a newer attempt may have adopted this very machine while
            # this one was paused, and our mark must not take it back from that attempt.
            await self._fence(input, attempt, mine, just_taken=system_id)
            await self._mark(input, system_id, pool.name, attempt)
            return allocated.machine().model_copy(
                update={"pool": pool.name, "request_id": input.request_id}
            )
        # Machines already taken stay marked; the workflow's compensation releases them.
        raise ApplicationError(
            f"not enough machines in {input.account}: pool {pool.name!r} lost its candidates "
            "to concurrent allocations",
            type=Reason.INSUFFICIENT_CAPACITY.value,
            non_retryable=True,
        )

    async def _mark(
        self, input: AcquireMachinesInput, system_id: str, pool: str | None, attempt: Fence
    ) -> None:
        marks = {
            OWNER_DATA_CLUSTER: input.cluster_id,
            OWNER_DATA_REQUEST: input.request_id,
            OWNER_DATA_ATTEMPT: "{}.{}".format(*attempt),
        }
        if pool:
            marks[OWNER_DATA_POOL] = pool
        if input.installation_id:
            marks[OWNER_DATA_INSTALLATION] = input.installation_id
        await self.sessions.call(
            input.account, "Machine", "set_owner_data", ANY_JSON, system_id=system_id, **marks
        )

    # --- deploy --------------------------------------------------------------------------

    @activity.defn(name=DEPLOY_MACHINE)
    async def deploy_machine(self, input: DeployMachineInput) -> DeployMachineResult:
        """Start deploying; a machine already Deploying or Deployed counts as done."""
        found = await self._read(input.account, input.system_id)
        if found.status in (STATUS_DEPLOYING, STATUS_DEPLOYED):
            return _deploy_result(found)
        params: dict[str, Any] = {
            "system_id": input.system_id,
            "osystem": input.osystem,
            "distro_series": input.distro_series,
            "user_data": base64.b64encode(input.user_data.encode()).decode(),
            "agent_name": owner_agent_name(input.cluster_id),
            "comment": f"metalgate cluster {input.cluster_id}",
        }
        if input.hwe_kernel:
            params["hwe_kernel"] = input.hwe_kernel
        try:
            deploying = await self.sessions.call(
                input.account, "Machine", "deploy", MACHINE, **params
            )
        except CallError as error:
            if error.status == HTTP_CONFLICT:
                # Another attempt of this deploy (a paused replica, a lost answer) got there
                # first: the machine deploying for this cluster is the outcome we wanted.
                now = await self._read(input.account, input.system_id)
                ours = now.owner_data.get(OWNER_DATA_CLUSTER) == input.cluster_id
                if ours and now.status in (STATUS_DEPLOYING, STATUS_DEPLOYED):
                    return DeployMachineResult(system_id=input.system_id, status=now.status_name)
            if error.status in (HTTP_CONFLICT, HTTP_BAD_REQUEST):
                raise ApplicationError(
                    f"{input.account} refused to deploy {input.system_id}: "
                    f"{call_error_text(error, input.account)}",
                    type=Reason.MACHINE_DEPLOY_FAILED.value,
                    non_retryable=True,
                ) from None
            raise
        return _deploy_result(deploying)

    async def _read(self, account: MaasAccount, system_id: str) -> MaasMachine:
        return await self.sessions.call(account, "Machine", "read", MACHINE, system_id=system_id)

    # --- wait deployed -------------------------------------------------------------------

    @activity.defn(name=WAIT_DEPLOYED)
    async def wait_deployed(self, input: WaitDeployedInput) -> WaitDeployedResult:
        """Wait until Deployed on the shared watcher's readings, heartbeating each one; a
        failed deploy is quarantined."""
        account, system_id = input.account, input.system_id
        async with self.watcher.watch(account, [system_id], input.poll_interval_seconds) as watch:
            while True:
                # A machine the filtered read does not list is read alone: MAAS says why.
                now = (await watch.next())[system_id] or await self._read(account, system_id)
                activity.heartbeat(now.status_name)
                if now.status == STATUS_DEPLOYED:
                    return WaitDeployedResult(machine=now.machine())
                if now.status == STATUS_FAILED_DEPLOYMENT:
                    how = await self._quarantine(account, system_id)
                    raise ApplicationError(
                        f"{now.hostname or system_id} ({system_id}) failed to "
                        f"deploy: {now.status_message or 'Failed deployment'}; it is {how}",
                        type=Reason.MACHINE_DEPLOY_FAILED.value,
                        non_retryable=True,
                    )
                if now.status != STATUS_DEPLOYING:
                    raise ApplicationError(
                        f"{system_id} is {now.status_name!r} while waiting for "
                        "Deployed: someone aborted or released it",
                        type=Reason.MACHINE_DEPLOY_FAILED.value,
                        non_retryable=True,
                    )

    async def _quarantine(self, account: MaasAccount, system_id: str) -> str:
        """Tag the machine; a key without MAAS admin rights (tags need them) marks it broken.

        Answers how it was quarantined, for the error message a person reads.
        """
        try:
            await self._tag_quarantined(account, system_id)
        except ApplicationError as error:
            if error.type != Reason.MAAS_AUTH_FAILED:
                raise
            await self.sessions.call(
                account,
                "Machine",
                "mark_broken",
                ANY_JSON,
                system_id=system_id,
                comment="metalgate: deployment failed; this key may not manage tags",
            )
            log.warning("marked %s broken after a failed deployment", system_id)
            return "marked broken (the API key may not manage tags)"
        log.warning(
            "quarantined %s with tag %s after a failed deployment", system_id, QUARANTINE_TAG
        )
        return f"quarantined with tag {QUARANTINE_TAG!r}"

    async def _tag_quarantined(self, account: MaasAccount, system_id: str) -> None:
        await tag_quarantined(self.sessions, account, system_id)

    # --- release -------------------------------------------------------------------------

    @activity.defn(name=RELEASE_MACHINES)
    async def release_machines(self, input: ReleaseMachinesInput) -> ReleaseMachinesResult:
        """Release what this cluster still owns; gone, free or foreign machines count as done.

        A machine no longer carrying the cluster's agent_name was released already and may
        belong to someone else now: never release it.
        """
        owned = {m.system_id: m for m in await self._owned(input.account, input.cluster_id)}
        result = ReleaseMachinesResult()
        comment = input.comment or f"metalgate cluster {input.cluster_id} released"
        for system_id in input.system_ids:
            found = owned.get(system_id)
            if found is None or found.status in RELEASED_OR_RELEASING:
                result.already_free.append(system_id)
                if found is not None and found.status in RELEASING:
                    result.in_progress.append(system_id)
                continue
            try:
                answer = await self.sessions.call(
                    input.account,
                    "Machine",
                    "release",
                    MACHINE,
                    system_id=system_id,
                    comment=comment,
                    **ERASE_PARAMS[input.erase_policy],
                )
            except CallError as error:
                if error.status != HTTP_NOT_FOUND:
                    raise
                result.already_free.append(system_id)
                continue
            result.released.append(system_id)
            if answer.status in RELEASING:
                result.in_progress.append(system_id)
        return result

    # --- wait released -------------------------------------------------------------------

    @activity.defn(name=WAIT_RELEASED)
    async def wait_released(self, input: WaitReleasedInput) -> WaitReleasedResult:
        """Wait until none of the cluster's owned machines is Releasing or Disk erasing.

        Reads what the cluster owns, then waits on the shared watcher for the releasing ones
        to move on, heartbeating each reading, so an erase of hours is one activity, not a
        history of polls. Machines still owned but not releasing (Failed releasing, say) are
        answered as stuck.
        """
        while True:
            owned = await self._owned(input.account, input.cluster_id)
            releasing = [m for m in owned if m.status in RELEASING]
            if not releasing:
                return WaitReleasedResult(stuck=sorted(m.system_id for m in owned))
            ids = [m.system_id for m in releasing]
            async with self.watcher.watch(input.account, ids, input.poll_interval_seconds) as watch:
                while releasing:
                    activity.heartbeat(
                        ", ".join(f"{m.system_id}: {m.status_name}" for m in releasing)
                    )
                    reading = await watch.next()
                    releasing = [m for m in reading.values() if m and m.status in RELEASING]

    # --- find owned ----------------------------------------------------------------------

    @activity.defn(name=FIND_OWNED)
    async def find_owned(self, input: FindOwnedInput) -> FindOwnedResult:
        """Machines a cluster owns (by agent_name), or with no cluster every marked machine.

        Without a cluster id MAAS cannot be asked by agent_name (it never returns it), so we
        list machines whose owner_data names a cluster, plus machines allocated to this API
        key that carry no owner_data yet, reported with `cluster_id=""`: either an
        allocation interrupted before it was marked (its acquire retry adopts it) or another
        tool sharing the key. Callers must not release `""` machines automatically.
        """
        if input.cluster_id is not None:
            owned = await self._owned(input.account, input.cluster_id)
            return FindOwnedResult(machines=[_owned_machine(m, input.cluster_id) for m in owned])
        machines = []
        for found in await self.sessions.call(input.account, "Machines", "read", MACHINES):
            cluster = found.owner_data.get(OWNER_DATA_CLUSTER)
            if cluster:
                machines.append(_owned_machine(found, cluster))
        allocated = await self.sessions.call(input.account, "Machines", "list_allocated", MACHINES)
        for found in allocated:
            if not found.owner_data:
                machines.append(_owned_machine(found, ""))
        return FindOwnedResult(machines=machines)

    # --- check account -------------------------------------------------------------------

    @activity.defn(name=CHECK_ACCOUNT)
    async def check_account(self, input: CheckAccountInput) -> CheckAccountResult:
        """Reach MAAS with the account's key and describe what it offers."""
        account = input.account
        version = await self.sessions.call(account, "Version", "read", VERSION)
        machines = await self.sessions.call(account, "Machines", "read", MACHINES)
        zones = await self.sessions.call(account, "Zones", "read", NAMED)
        pools = await self.sessions.call(account, "ResourcePools", "read", NAMED)
        tags = await self.sessions.call(account, "Tags", "read", NAMED)
        return CheckAccountResult(
            maas_version=version.version,
            zones=sorted(z.name for z in zones),
            resource_pools=sorted(p.name for p in pools),
            tags=sorted(t.name for t in tags),
            machines=len(machines),
            ready_machines=sum(1 for m in machines if m.status == STATUS_READY),
        )


def _deploy_result(machine: MaasMachine) -> DeployMachineResult:
    return DeployMachineResult(
        system_id=machine.system_id,
        status=machine.status_name,
        ip_addresses=list(machine.ip_addresses),
    )


def _zones_held(
    input: AcquireMachinesInput, owned: list[MaasMachine], held: list[Machine]
) -> dict[str, list[str]]:
    """Per pool, the zones of the cluster's live machines in it: this request's and the
    others' (a scale-up keeps the balance), leaving out the ones being replaced."""
    zones: dict[str, list[str]] = {}
    mine = {m.system_id for m in held}
    for machine in held:
        zones.setdefault(machine.pool, []).append(machine.zone)
    for found in owned:
        pool = found.owner_data.get(OWNER_DATA_POOL)
        if (
            pool
            and found.system_id not in mine
            and found.system_id not in input.replacing
            and found.status not in RELEASED_OR_RELEASING
        ):
            zones.setdefault(pool, []).append(found.zone)
    return zones


def _pool_for(machine: MaasMachine, pools: list[NodePool], counts: dict[str, int]) -> NodePool:
    """The pool an unmarked machine was taken for: the first one it fits that is short."""
    fitting = [p for p in pools if matches(machine, p.constraints)] or pools
    short = [p for p in fitting if counts[p.name] < p.count]
    return (short or fitting)[0]


# (activity id, attempt) of an acquire; compared as a tuple.
Fence = tuple[int, int]


def _fence_token() -> Fence:
    info = activity.info()
    return (int(info.activity_id) if info.activity_id.isdigit() else 0, info.attempt)


def _attempt_of(data: dict[str, str]) -> Fence:
    """The fence token a mark names; marks older than fencing count as (0, 0)."""
    parts = data.get(OWNER_DATA_ATTEMPT, "0.0").split(".")
    try:
        return (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)
    except ValueError:
        return (0, 0)


def _owned_machine(machine: MaasMachine, cluster_id: str) -> OwnedMachine:
    return OwnedMachine(
        **machine.machine().model_dump(),
        cluster_id=cluster_id,
        installation_id=machine.owner_data.get(OWNER_DATA_INSTALLATION, ""),
    )
