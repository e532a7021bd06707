"""Cluster conditions: one per gate, False with a reason while waiting, True once passed."""

from __future__ import annotations

from domain.conditions import Condition, ConditionType, apply_status, read_conditions
from domain.phases import Phase, Reason

T = ConditionType


def view(conditions: list[Condition]) -> list[tuple[str, str, str | None]]:
    return [
        (c.type.value, c.status.value, c.reason.value if c.reason else None) for c in conditions
    ]


def walk(*steps: tuple[Phase, Reason | None]) -> list[Condition]:
    conditions: list[Condition] = []
    for i, (phase, reason) in enumerate(steps):
        conditions = apply_status(conditions, phase, reason, "", f"2026-01-01T00:00:{i:02d}+00:00")
    return conditions


def test_a_running_cluster_shows_every_create_gate_true() -> None:
    conditions = walk(
        (Phase.PENDING, None),
        (Phase.ACQUIRING_MACHINES, Reason.WAITING_FOR_GATEWAY),
        (Phase.ACQUIRING_MACHINES, None),
        (Phase.DEPLOYING_OS, Reason.WAITING_FOR_DEPLOYMENT),
        (Phase.BOOTSTRAPPING_CONTROL_PLANE, Reason.WAITING_FOR_AGENT),
        (Phase.JOINING_NODES, Reason.WAITING_FOR_AGENT),
        (Phase.RUNNING, None),
    )
    assert view(conditions) == [
        ("MachinesAcquired", "True", None),
        ("OSDeployed", "True", None),
        ("ControlPlaneReady", "True", None),
        ("NodesReady", "True", None),
        ("AgentConnected", "True", None),
    ]


def test_a_waiting_gate_is_false_with_its_reason_and_keeps_its_transition_time() -> None:
    conditions = walk(
        (Phase.ACQUIRING_MACHINES, None),
        (Phase.ACQUIRING_MACHINES, Reason.WAITING_FOR_GATEWAY),
        (Phase.DEPLOYING_OS, Reason.WAITING_FOR_DEPLOYMENT),
    )
    assert view(conditions) == [
        ("MachinesAcquired", "True", None),
        ("OSDeployed", "False", "WaitingForDeployment"),
    ]
    acquired = walk(
        (Phase.ACQUIRING_MACHINES, None), (Phase.ACQUIRING_MACHINES, Reason.WAITING_FOR_GATEWAY)
    )
    assert view(acquired) == [("MachinesAcquired", "False", "WaitingForGateway")]
    # Still False: the reason changed, the status did not, so neither did the transition time.
    assert acquired[0].last_transition_time == "2026-01-01T00:00:00+00:00"


def test_a_failed_create_shows_the_failing_gate_false_with_its_reason() -> None:
    conditions = walk(
        (Phase.ACQUIRING_MACHINES, None),
        (Phase.DEPLOYING_OS, Reason.WAITING_FOR_DEPLOYMENT),
        (Phase.FAILED, Reason.MACHINE_DEPLOY_FAILED),
    )
    assert view(conditions) == [
        ("MachinesAcquired", "True", None),
        ("OSDeployed", "False", "MachineDeployFailed"),
    ]
    assert view(walk((Phase.PENDING, None), (Phase.FAILED, Reason.INSUFFICIENT_CAPACITY))) == [
        ("MachinesAcquired", "False", "InsufficientCapacity")
    ]


def test_a_silent_agent_and_a_delete_have_their_own_gates() -> None:
    running = walk((Phase.RUNNING, None), (Phase.UNREACHABLE, Reason.AGENT_SILENT))
    assert ("AgentConnected", "False", "AgentSilent") in view(running)
    deleting = apply_status(running, Phase.DELETING, Reason.WAITING_FOR_DISK_ERASE, "", "t1")
    assert view(deleting)[-1] == ("MachinesReleased", "False", "WaitingForDiskErase")
    deleted = apply_status(deleting, Phase.DELETED, None, "", "t2")
    assert view(deleted)[-1] == ("MachinesReleased", "True", None)


def test_stored_conditions_of_the_old_phase_named_shape_still_read() -> None:
    old = [
        {
            "type": phase,
            "status": "False" if reason else "True",
            "reason": reason,
            "message": "",
            "last_transition_time": f"2026-01-01T00:00:0{i}+00:00",
        }
        for i, (phase, reason) in enumerate(
            [
                ("AcquiringMachines", "WaitingForGateway"),
                ("DeployingOS", "WaitingForDeployment"),
                ("BootstrappingControlPlane", "WaitingForAgent"),
                ("WaitingForAgent", "WaitingForAgent"),
                ("Running", None),
            ]
        )
    ]
    assert all(c[1] == "True" for c in view(read_conditions(old)))
    assert [c.type for c in read_conditions(old)][:4] == [
        T.MACHINES_ACQUIRED,
        T.OS_DEPLOYED,
        T.CONTROL_PLANE_READY,
        T.NODES_READY,
    ]
    new = [c.model_dump(mode="json") for c in read_conditions(old)]
    assert read_conditions(new) == read_conditions(old)
