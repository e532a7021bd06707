"""The zone spread on its own: emptiest zone first, a note only when balance was lost."""

from __future__ import annotations

from activities.maas_answers import STATUS_READY, MaasMachine
from activities.zone_spread import ZoneSpread


def machines(*zones: str) -> list[MaasMachine]:
    return [
        MaasMachine(system_id=f"m{i}", status=STATUS_READY, zone=zone)
        for i, zone in enumerate(zones)
    ]


def test_picks_go_round_the_listed_zones_in_their_order() -> None:
    spread = ZoneSpread(["az2", "az1"])
    order = spread.order(machines("az1", "az1", "az2", "az2"), picks=4)
    assert [m.zone for m in order] == ["az2", "az1", "az2", "az1"]
    assert spread.note("p") is None


def test_the_zones_the_pool_holds_already_count() -> None:
    spread = ZoneSpread(["az1", "az2", "az3"], held=["az1", "az2"])
    assert spread.order(machines("az1", "az2", "az3"), picks=1)[0].zone == "az3"


def test_an_uneven_count_is_no_fallback_but_a_lost_balance_is() -> None:
    even = ZoneSpread(["az1", "az2"])
    even.order(machines("az1", "az2", "az2"), picks=3)  # 1 + 2: as even as 3 in 2 zones gets
    assert even.note("p") is None
    uneven = ZoneSpread(["az1", "az2"])
    uneven.order(machines("az2", "az2"), picks=2)
    assert uneven.note("p") == (
        "pool p: no free matching machine in zone az1, so its share went to the other zones "
        "(az1: 0, az2: 2)"
    )


def test_without_zones_the_order_is_left_alone() -> None:
    free = machines("b", "a", "c")
    spread = ZoneSpread([])
    assert spread.order(free, picks=3) == free and spread.note("p") is None
