"""MAAS call metrics as the Temporal runtime serves them: counts, outcomes, machines."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

import runtime.metrics
from domain.naming import QUARANTINE_TAG
from domain.phases import Reason
from runtime.metrics import MAAS_CALL_BUCKETS, MAAS_CALL_SECONDS, maas_call_metrics
from tests.support.ports import free_port


class MaasSaid(Exception):
    """Stands for python-libmaas's CallError: MAAS answered with an HTTP error."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class Sessions:
    def __init__(self) -> None:
        self.fail: BaseException | None = None

    @maas_call_metrics
    async def call(self, account: Any, handler: str, action: str, shape: Any, **params: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        return {"handler": handler}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> str:
    """A real runtime serving Prometheus, as install_temporal_metrics makes in a worker."""
    port = free_port()
    prometheus = PrometheusConfig(
        bind_address=f"127.0.0.1:{port}",
        counters_total_suffix=True,
        histogram_bucket_overrides={MAAS_CALL_SECONDS: MAAS_CALL_BUCKETS},
    )
    own = Runtime(telemetry=TelemetryConfig(metrics=prometheus))
    monkeypatch.setattr(runtime.metrics.Runtime, "default", staticmethod(lambda: own))
    return f"http://127.0.0.1:{port}/metrics"


async def scraped(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient() as http:
        text = (await http.get(url)).text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "service_name"))
            found.setdefault(s.name, {})[labels] = s.value
    return found


async def test_calls_are_counted_by_operation_and_outcome(served: str) -> None:
    sessions = Sessions()
    await sessions.call(None, "Machines", "read", None)
    sessions.fail = MaasSaid(409)
    with pytest.raises(MaasSaid):
        await sessions.call(None, "Machines", "allocate", None, system_id="a")
    sessions.fail = ApplicationError("down", type=Reason.MAAS_UNREACHABLE.value)
    with pytest.raises(ApplicationError):
        await sessions.call(None, "Machines", "read", None)
    got = await scraped(served)
    calls = got["metalgate_maas_calls_total"]
    assert calls[(("operation", "Machines.read"), ("outcome", "ok"))] == 1
    assert calls[(("operation", "Machines.allocate"), ("outcome", "http_409"))] == 1
    assert calls[(("operation", "Machines.read"), ("outcome", Reason.MAAS_UNREACHABLE.value))] == 1
    assert got["metalgate_maas_call_duration_seconds_count"][(("operation", "Machines.read"),)] == 2
    # A refused allocate took no machine.
    assert "metalgate_machines_acquired_total" not in got


async def test_machines_moved_are_read_from_the_calls(served: str) -> None:
    sessions = Sessions()
    await sessions.call(None, "Machines", "allocate", None, dry_run=True)  # a check, no machine
    await sessions.call(None, "Machines", "allocate", None, system_id="a")
    await sessions.call(None, "Machines", "allocate", None, system_id="b")
    await sessions.call(None, "Machine", "release", None, system_id="a")
    await sessions.call(None, "Tag", "update_nodes", None, name=QUARANTINE_TAG, add=["b"])
    await sessions.call(None, "Tag", "update_nodes", None, name="gpu", add=["c"])
    await sessions.call(None, "Machine", "mark_broken", None, system_id="d")
    got = await scraped(served)
    assert got["metalgate_machines_acquired_total"][()] == 2
    assert got["metalgate_machines_released_total"][()] == 1
    assert got["metalgate_machines_quarantined_total"][()] == 2
