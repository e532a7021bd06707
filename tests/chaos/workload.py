"""The chaos workload: each cluster goes create -> (Running) upgrade -> delete through the API.

Every fourth cluster is deleted during its create instead, at a phase picked by its index,
so deletes meet creates at every phase. At Running, the machines MAAS has marked for the
cluster are compared with the store's: any more is surplus (a late acquire attempt's).

Calls go through the typed `cli.api_client.ApiClient`. While the API is killed a call fails
with no answer (or a 5xx while Temporal is down), so every call is retried until the API
answers; a create whose 202 was lost is found again by name. Every request the API accepted
is written down, so the checker can demand that each one is reflected in the end state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cli.api_client import ApiClient, ApiError
from domain.cluster import ClusterSpec, ErasePolicy
from domain.phases import CREATE_PHASES, Phase
from tests.chaos.maas_watch import MaasWatch, owner_of

log = logging.getLogger(__name__)

T = TypeVar("T")

UPGRADE_TO = "v1.31.2"
POLL_SECONDS = 2.0
# Answers that mean "no API, or no Temporal behind it, right now": try again.
TRANSIENT = {0, 500, 502, 503, 504}
EARLY_DELETE_EVERY = 4
EARLY_DELETE_PHASES = [p for p in CREATE_PHASES if p != Phase.RUNNING]
RELEASING = {"Releasing", "Disk erasing"}
SECURE_ERASE_EVERY = 3


@dataclass
class ClusterRun:
    """What happened to one cluster, as the workload saw it."""

    name: str
    cluster_id: str = ""
    accepted: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    failed_reason: str | None = None
    upgraded: bool = False
    final_phase: str = ""
    error: str = ""
    deleted_during: str = ""
    surplus: list[str] = field(default_factory=list)

    def saw(self, phase: str) -> None:
        if not self.phases or self.phases[-1] != phase:
            self.phases.append(phase)


@dataclass
class Workload:
    api_url: str
    api_key: str
    cloud_account_id: str
    run_id: str
    phase_timeout: float
    executor: ThreadPoolExecutor
    maas: MaasWatch | None = None
    retries: Counter[str] = field(default_factory=Counter)
    # Every cluster driven so far, so a run cut short by its budget still reports them all.
    runs: dict[int, ClusterRun] = field(default_factory=dict)

    async def call(self, what: str, fn: Callable[[ApiClient], T]) -> T:
        """One API call in a worker thread, retried while the API or Temporal is down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.phase_timeout

        def once() -> T:
            with ApiClient(self.api_url, self.api_key, timeout=30.0) as api:
                return fn(api)

        while True:
            try:
                return await loop.run_in_executor(self.executor, once)
            except ApiError as error:
                if error.status not in TRANSIENT or loop.time() > deadline:
                    raise
                self.retries[what] += 1
            await asyncio.sleep(1.0)

    async def drive(self, index: int) -> ClusterRun:
        run = self.runs[index] = ClusterRun(name=f"chaos-{self.run_id}-{index}")
        try:
            await self._create(run, index)
            if index % EARLY_DELETE_EVERY == EARLY_DELETE_EVERY - 1:
                target = EARLY_DELETE_PHASES[(index // EARLY_DELETE_EVERY) % 5]
                await self._wait(run, self._from(target))
                run.deleted_during = run.phases[-1]
            else:
                phase = await self._wait(run, {Phase.RUNNING, Phase.FAILED})
                if phase == Phase.RUNNING:
                    await self._check_surplus(run)
                    await self._upgrade(run)
        except Exception as error:  # the checker reports it against this cluster
            self._failed(run, error)
        # A cluster stuck on the way is deleted all the same: delete must finish it too.
        if run.cluster_id:
            try:
                await self._delete(run)
            except Exception as error:
                self._failed(run, error)
        return run

    @staticmethod
    def _from(target: Phase) -> set[Phase]:
        """`target` or any phase after it (a poll may miss a short phase)."""
        order = list(CREATE_PHASES)
        return {*order[order.index(target) :], Phase.FAILED}

    async def _check_surplus(self, run: ClusterRun) -> None:
        if self.maas is None:
            return
        body = await self._get(run)
        stored = {m["system_id"] for m in body.get("machines", [])}
        marked = {
            m["system_id"]
            for m in await self.maas.machines()
            if owner_of(m) == run.cluster_id and m.get("status_name") not in RELEASING
        }
        run.surplus = sorted(marked - stored)

    def _failed(self, run: ClusterRun, error: Exception) -> None:
        run.error = "; ".join(filter(None, [run.error, f"{type(error).__name__}: {error}"]))
        log.warning("chaos: cluster %s: %s", run.name, error)

    async def _create(self, run: ClusterRun, index: int) -> None:
        secure = index % SECURE_ERASE_EVERY == SECURE_ERASE_EVERY - 1
        spec = ClusterSpec(
            name=run.name, erase_policy=ErasePolicy.SECURE if secure else ErasePolicy.QUICK
        )
        try:
            body = await self.call(
                "create",
                lambda api: api.create_cluster(spec, cloud_account_id=self.cloud_account_id),
            )
        except ApiError as error:
            # A retry after a lost 202 meets the cluster the first attempt created.
            if error.status != 409:
                raise
            body = await self._find(run.name)
        run.cluster_id = body["id"]
        run.accepted.append("create")

    async def _find(self, name: str) -> dict[str, Any]:
        clusters = await self.call("list", lambda api: api.list_clusters())
        for cluster in clusters:
            if cluster["name"] == name and cluster["phase"] != Phase.DELETED:
                return cluster
        raise AssertionError(f"create of {name} answered 409 but no such live cluster exists")

    async def _get(self, run: ClusterRun) -> dict[str, Any]:
        body = await self.call("get", lambda api: api.get_cluster(run.cluster_id))
        run.saw(body["phase"])
        return body

    async def _wait(self, run: ClusterRun, phases: set[Phase]) -> Phase:
        deadline = time.monotonic() + self.phase_timeout
        while True:
            body = await self._get(run)
            phase = Phase(body["phase"])
            if phase in phases:
                if phase == Phase.FAILED:
                    run.failed_reason = body.get("reason") or ""
                return phase
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{run.name} still {phase} ({body.get('reason')}: {body.get('message')}) "
                    f"after {self.phase_timeout:.0f}s, waiting for {sorted(phases)}"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def _upgrade(self, run: ClusterRun) -> None:
        deadline = time.monotonic() + self.phase_timeout
        while True:
            try:
                await self.call(
                    "upgrade",
                    lambda api: api.upgrade_cluster(run.cluster_id, kubernetes_version=UPGRADE_TO),
                )
                break
            except ApiError as error:
                if error.status != 409 or time.monotonic() > deadline:
                    raise
                # An earlier attempt whose answer was lost (API killed) may have landed.
                body = await self._get(run)
                if body["kubernetes_version"] == UPGRADE_TO or body["phase"] == Phase.UPGRADING:
                    break
                # Otherwise the cluster is busy (e.g. Unreachable after an outage): ask again.
                await asyncio.sleep(POLL_SECONDS)
        run.accepted.append("upgrade")
        while True:
            body = await self._get(run)
            if body["kubernetes_version"] == UPGRADE_TO and body["phase"] == Phase.RUNNING:
                run.upgraded = True
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{run.name} upgrade accepted but still {body['phase']} at "
                    f"{body['kubernetes_version']} after {self.phase_timeout:.0f}s"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def _delete(self, run: ClusterRun) -> None:
        await self.call("delete", lambda api: api.delete_cluster(run.cluster_id))
        run.accepted.append("delete")
        await self._wait(run, {Phase.DELETED})
        run.final_phase = Phase.DELETED
