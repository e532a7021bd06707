"""MAAS answers parsed once: what the activities read, with MAAS's nulls and nesting."""

from __future__ import annotations

import pytest

from activities.maas_answers import MACHINE, MACHINES, MaasMachine, ShapeError
from domain.naming import OWNER_DATA_POOL, OWNER_DATA_REQUEST


def test_a_machine_answer_becomes_the_model_with_nulls_as_empty_values() -> None:
    machine = MACHINE.parse(
        {
            "system_id": "abc123",
            "status": 6,
            "status_name": "Deployed",
            "status_message": None,
            "hostname": "node01",
            "owner_data": None,
            "tag_names": None,
            "ip_addresses": None,
            "cpu_count": None,
            "memory": 8192,
            "zone": {"name": "zone-a", "id": 2},
            "pool": "gpu",
            "boot_interface": {"links": [{"subnet": {"cidr": "10.0.0.0/24"}}, {"subnet": None}]},
            "something_we_do_not_read": [1, 2],
        }
    )
    assert machine.owner_data == {}
    assert (machine.tag_names, machine.ip_addresses, machine.cpu_count) == ([], [], 0)
    assert (machine.zone, machine.pool, machine.status_message) == ("zone-a", "gpu", "")
    assert machine.boot_subnets == ["10.0.0.0/24"]


def test_our_view_takes_pool_and_request_from_the_marks() -> None:
    machine = MaasMachine(
        system_id="abc",
        status=9,
        status_name="Deploying",
        owner_data={OWNER_DATA_POOL: "cp", OWNER_DATA_REQUEST: "r1"},
        memory=4096,
        zone="default",
    ).machine()
    assert (machine.pool, machine.request_id, machine.status, machine.memory_mib) == (
        "cp",
        "r1",
        "Deploying",
        4096,
    )


@pytest.mark.parametrize(
    "answer,problem",
    [
        (b"<html>It works!</html>", "an HTML page of 22 bytes, not JSON"),
        ([{"system_id": "a", "status": "maybe"}], "0.status"),
        ({"system_id": "a", "status": 4}, "not a list of machines"),
    ],
)
def test_an_answer_of_another_shape_says_how_it_differs(answer: object, problem: str) -> None:
    with pytest.raises(ShapeError) as caught:
        MACHINES.parse(answer)
    assert problem in str(caught.value)
