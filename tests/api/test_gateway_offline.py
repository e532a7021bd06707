"""A gateway whose last replica left shows offline within 30 s, although Temporal still
lists its poller for about a minute."""

from __future__ import annotations

from datetime import timedelta

from api.gateway_status import Pollers, gateway_status
from domain.gateway import GatewayStatus
from store.types import utcnow


def status_after(seconds_since_heartbeat: float) -> GatewayStatus:
    now = utcnow()
    status, _ = gateway_status(
        gateway_id="gw-1",
        registered=True,
        # The stopped replica's last poll is still within Temporal's listing window.
        pollers=Pollers(live=1, last_access=now - timedelta(seconds=5)),
        last_heartbeat=now - timedelta(seconds=seconds_since_heartbeat),
        heartbeat_interval=15.0,
    )
    return status


def test_offline_within_30s_of_the_last_heartbeat() -> None:
    assert status_after(10) == GatewayStatus.ONLINE
    assert status_after(31) == GatewayStatus.OFFLINE


def test_a_gateway_that_never_heartbeats_stays_judged_by_its_pollers() -> None:
    status, _ = gateway_status(
        gateway_id="system",
        registered=True,
        pollers=Pollers(live=1, last_access=utcnow()),
        last_heartbeat=None,
        heartbeat_interval=15.0,
    )
    assert status == GatewayStatus.ONLINE
