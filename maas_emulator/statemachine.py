"""MAAS's machine lifecycle: Ready -> Allocated -> Deploying -> Deployed | Failed deployment,
and release -> Releasing | Disk erasing -> Ready.

Every method here is synchronous and runs on the event loop, so each transition (and each
allocation) is atomic with respect to concurrent requests. Transient statuses end on a timer;
their deadline is persisted, so after a restart `resume()` finishes them as MAAS would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time

from maas_emulator.errors import Conflict
from maas_emulator.faults import Faults
from maas_emulator.hooks import HookEvent, HookRunner
from maas_emulator.models import Event, Machine, NodeStatus, PowerState
from maas_emulator.state import State, new_event

log = logging.getLogger(__name__)

STATUS_CHANGED = "Node changed status"
DEPLOY_FAILED_MESSAGE = "Installation failed (refer to the installation log for more information)."

# Erasing takes a multiple of the release time: quick wipes two ends, secure uses the drive.
ERASE_FACTOR = {"quick": 1.0, "normal": 3.0, "secure": 6.0}

DEPLOYABLE = {NodeStatus.READY, NodeStatus.ALLOCATED}
RELEASABLE = {
    NodeStatus.ALLOCATED,
    NodeStatus.RESERVED,
    NodeStatus.BROKEN,
    NodeStatus.DEPLOYING,
    NodeStatus.DEPLOYED,
    NodeStatus.FAILED_DEPLOYMENT,
    NodeStatus.FAILED_RELEASING,
    NodeStatus.FAILED_DISK_ERASING,
}
ALREADY_RELEASED = {NodeStatus.READY, NodeStatus.RELEASING, NodeStatus.DISK_ERASING}


class Lifecycle:
    def __init__(
        self,
        state: State,
        faults: Faults,
        hooks: HookRunner,
        deploy_seconds: float,
        release_seconds: float,
    ) -> None:
        self._state = state
        self._faults = faults
        self._hooks = hooks
        self._deploy_seconds = deploy_seconds
        self._release_seconds = release_seconds
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def resume(self) -> None:
        """Re-arm the timers of machines caught in a transient status by a stop or a crash."""
        for machine in list(self._state.machines.values()):
            if machine.transition_at is not None:
                self._arm(machine, machine.transition_at - time.time())

    def boot_deployed(self) -> int:
        """Power on every Deployed machine again: its boot hook runs as after a deploy."""
        booted = [m for m in self._state.machines.values() if m.status == NodeStatus.DEPLOYED]
        for machine in booted:
            self._fire("deployed", machine)
        return len(booted)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def allocate(self, machine: Machine, username: str, agent_name: str, comment: str) -> None:
        machine.owner = username
        machine.agent_name = agent_name
        self._state.save_machine(machine, self._move(machine, NodeStatus.ALLOCATED, comment))

    def deploy(
        self,
        machine: Machine,
        username: str,
        *,
        osystem: str,
        distro_series: str,
        hwe_kernel: str | None,
        user_data_b64: str | None,
        agent_name: str | None,
        ephemeral: bool,
        comment: str,
    ) -> None:
        if machine.status not in DEPLOYABLE:
            raise Conflict(
                f"Cannot deploy node {machine.hostname} because it is in the "
                f"'{machine.status.label}' state."
            )
        events = []
        if machine.status == NodeStatus.READY:
            machine.owner = username
            events.append(self._move(machine, NodeStatus.ALLOCATED, comment))
        if agent_name is not None:
            machine.agent_name = agent_name
        machine.osystem = osystem
        machine.distro_series = distro_series
        # MAAS claims the machine's automatic IPs when deployment starts, not when it ends.
        machine.ip_addresses = [machine.address]
        machine.hwe_kernel = hwe_kernel
        machine.user_data_b64 = user_data_b64
        machine.ephemeral_deploy = ephemeral
        machine.power_state = PowerState.ON
        events.append(self._move(machine, NodeStatus.DEPLOYING, comment))
        machine.status_message = "Deploying"
        self._enter_transient(machine, self._deploy_seconds, events)

    def release(self, machine: Machine, *, erase: str | None, comment: str) -> bool:
        """Start releasing; False when the machine is already released (a no-op, as in MAAS)."""
        if machine.status in ALREADY_RELEASED:
            return False
        if machine.status not in RELEASABLE:
            raise Conflict(
                f"Node {machine.hostname} cannot be released in its current state "
                f"('{machine.status.label}')."
            )
        self._cancel(machine.system_id)
        booted = machine.power_state == PowerState.ON
        if booted:
            self._fire("released", machine)
        if machine.status == NodeStatus.BROKEN:
            self._clear_ownership(machine)
            self._state.save_machine(machine)
            return True
        if not booted and erase is None:
            # Like MAAS: a machine that is off and needs no wipe is released on the spot.
            self._clear_ownership(machine)
            self._state.save_machine(machine, self._move(machine, NodeStatus.READY, comment))
            return True
        machine.power_state = PowerState.ON if erase else PowerState.OFF
        if erase is None:
            event = self._move(machine, NodeStatus.RELEASING, comment)
            self._enter_transient(machine, self._release_seconds, [event])
        else:
            event = self._move(machine, NodeStatus.DISK_ERASING, comment)
            self._enter_transient(machine, self._release_seconds * ERASE_FACTOR[erase], [event])
        return True

    def abort(self, machine: Machine, comment: str) -> None:
        if machine.status == NodeStatus.DEPLOYING:
            target = NodeStatus.ALLOCATED
        elif machine.status == NodeStatus.DISK_ERASING:
            target = NodeStatus.FAILED_DISK_ERASING
        else:
            raise Conflict(
                f"Cannot abort in current state: node {machine.hostname} is "
                f"'{machine.status.label}'."
            )
        self._cancel(machine.system_id)
        machine.transition_at = None
        machine.power_state = PowerState.OFF
        machine.status_message = "Aborted"
        machine.ip_addresses = []
        self._state.save_machine(machine, self._move(machine, target, comment))

    def mark_broken(self, machine: Machine, comment: str) -> None:
        if machine.status == NodeStatus.BROKEN:
            raise Conflict(f"Node {machine.hostname} is already broken.")
        self._cancel(machine.system_id)
        machine.transition_at = None
        machine.status_before_broken = machine.status
        machine.status_message = comment or "Marked broken"
        self._state.save_machine(machine, self._move(machine, NodeStatus.BROKEN, comment))

    def mark_fixed(self, machine: Machine, comment: str) -> None:
        if machine.status != NodeStatus.BROKEN:
            raise Conflict(
                f"Can't mark node {machine.hostname} fixed: it is "
                f"'{machine.status.label}', not 'Broken'."
            )
        # MAAS returns a machine broken while deployed to Deployed, anything else to Ready.
        if machine.status_before_broken == NodeStatus.DEPLOYED and machine.owner:
            target = NodeStatus.DEPLOYED
        else:
            target = NodeStatus.READY
            self._clear_ownership(machine)
        machine.status_before_broken = None
        machine.status_message = None
        self._state.save_machine(machine, self._move(machine, target, comment))

    def power(self, machine: Machine, username: str, on: bool, comment: str) -> None:
        if on and machine.owner is None:
            raise Conflict("Can't start node: it hasn't been allocated.")
        was_on = machine.power_state == PowerState.ON
        machine.power_state = PowerState.ON if on else PowerState.OFF
        what = "Powering on" if on else "Powering off"
        description = f"{what}: {comment}" if comment else what
        self._state.save_machine(machine, new_event(machine, username, what, description))
        # A Deployed machine runs its OS only while on: off stops it, on boots it again
        # (unless its hardware is dead).
        if machine.status == NodeStatus.DEPLOYED and was_on != on:
            if on and self._faults.dead(machine.system_id, machine.hostname):
                return
            self._fire("deployed" if on else "released", machine)

    def _move(self, machine: Machine, target: NodeStatus, comment: str = "") -> Event:
        description = f"From '{machine.status.label}' to '{target.label}'"
        if comment:
            description = f"{description}: {comment}"
        machine.status = target
        log.debug("%s %s", machine.system_id, description)
        return new_event(machine, machine.owner or "unknown", STATUS_CHANGED, description)

    def _enter_transient(self, machine: Machine, seconds: float, events: list[Event]) -> None:
        if seconds <= 0:
            # Zero durations finish inside the same request, for benchmarks.
            machine.transition_at = None
            self._state.save_machine(machine, *events, *self._finish(machine))
            return
        machine.transition_at = time.time() + seconds
        self._state.save_machine(machine, *events)
        self._arm(machine, seconds)

    def _arm(self, machine: Machine, delay: float) -> None:
        self._cancel(machine.system_id)
        loop = asyncio.get_running_loop()
        self._timers[machine.system_id] = loop.call_later(
            max(delay, 0.0), self._on_timer, machine.system_id
        )

    def _cancel(self, system_id: str) -> None:
        timer = self._timers.pop(system_id, None)
        if timer is not None:
            timer.cancel()

    def _on_timer(self, system_id: str) -> None:
        self._timers.pop(system_id, None)
        machine = self._state.machines.get(system_id)
        if machine is None or machine.transition_at is None:
            return
        machine.transition_at = None
        self._state.save_machine(machine, *self._finish(machine))

    def _finish(self, machine: Machine) -> list[Event]:
        if machine.status == NodeStatus.DEPLOYING:
            if self._faults.deploy_fails(machine.system_id, machine.hostname):
                machine.status_message = DEPLOY_FAILED_MESSAGE
                return [self._move(machine, NodeStatus.FAILED_DEPLOYMENT)]
            machine.status_message = "Deployed"
            event = self._move(machine, NodeStatus.DEPLOYED)
            self._fire("deployed", machine)
            return [event]
        if machine.status in (NodeStatus.RELEASING, NodeStatus.DISK_ERASING):
            event = self._move(machine, NodeStatus.READY)
            self._clear_ownership(machine)
            return [event]
        log.warning("timer fired for %s in status %s", machine.system_id, machine.status.label)
        return []

    def _clear_ownership(self, machine: Machine) -> None:
        machine.owner = None
        machine.agent_name = ""
        machine.owner_data = {}
        machine.osystem = ""
        machine.distro_series = ""
        machine.hwe_kernel = None
        machine.user_data_b64 = None
        machine.ephemeral_deploy = False
        machine.ip_addresses = []
        machine.power_state = PowerState.OFF
        machine.status_message = None

    def _fire(self, kind: str, machine: Machine) -> None:
        user_data = b""
        if machine.user_data_b64:
            try:
                user_data = base64.b64decode(machine.user_data_b64)
            except binascii.Error:
                log.warning("undecodable user data on %s", machine.system_id)
        self._hooks.fire(
            HookEvent.model_validate(
                {
                    "event": kind,
                    "system_id": machine.system_id,
                    "hostname": machine.hostname,
                    "ip_addresses": [machine.address],
                    "user_data": user_data,
                }
            )
        )
