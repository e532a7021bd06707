"""Prometheus metrics of the worker processes: Temporal's runtime serves them with ours.

The control-plane worker, the system gateway and every PCG replica make the Temporal SDK's
runtime serve Prometheus (`install_temporal_metrics`); metalgate's own worker-side metrics
(MAAS calls, machines) are recorded through the same runtime's meter, so each process has
one metrics endpoint. The API has its own (api/metrics.py). Dashboards and alerts query
these names: deploy/grafana/dashboards/metalgate.json.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.common import MetricCounter, MetricHistogramFloat, MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from domain.naming import QUARANTINE_TAG

MAAS_CALLS = "metalgate_maas_calls"  # counter, served as metalgate_maas_calls_total
MAAS_CALL_SECONDS = "metalgate_maas_call_duration_seconds"
MACHINES_ACQUIRED = "metalgate_machines_acquired"
MACHINES_RELEASED = "metalgate_machines_released"
MACHINES_QUARANTINED = "metalgate_machines_quarantined"

# MAAS answers in milliseconds when idle and in tens of seconds under load or failure.
MAAS_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def install_temporal_metrics(bind_address: str | None) -> None:
    """Serve the Temporal SDK's metrics (and ours) as Prometheus text on `bind_address`.

    Must run before the process's first Temporal client: the runtime is fixed from then on.
    """
    if not bind_address:
        return
    prometheus = PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={MAAS_CALL_SECONDS: MAAS_CALL_BUCKETS},
    )
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(metrics=prometheus)), error_if_already_set=True
    )
    # Served at 0 from the start, so rate() and the dashboard work before the first machine.
    machines = _maas_instruments()
    for counter in (machines.acquired, machines.released, machines.quarantined):
        counter.add(0)


class _MaasInstruments:
    """The MAAS instruments of one meter, made once (a no-op meter when metrics are off)."""

    def __init__(self, meter: MetricMeter) -> None:
        self.meter = meter
        self.calls: MetricCounter = meter.create_counter(
            MAAS_CALLS, "MAAS API calls by operation and outcome"
        )
        self.seconds: MetricHistogramFloat = meter.create_histogram_float(
            MAAS_CALL_SECONDS, "MAAS API call latency by operation", "s"
        )
        self.acquired = meter.create_counter(MACHINES_ACQUIRED, "machines allocated in MAAS")
        self.released = meter.create_counter(MACHINES_RELEASED, "machines released in MAAS")
        self.quarantined = meter.create_counter(
            MACHINES_QUARANTINED, "machines quarantined after a failed deployment"
        )


_instruments: _MaasInstruments | None = None


def _maas_instruments() -> _MaasInstruments:
    global _instruments
    meter = Runtime.default().metric_meter
    if _instruments is None or _instruments.meter is not meter:
        _instruments = _MaasInstruments(meter)
    return _instruments


def call_outcome(error: BaseException | None) -> str:
    """`ok`, the domain error type (MaasUnreachable, ...), or MAAS's own `http_<status>`."""
    if error is None:
        return "ok"
    if isinstance(error, ApplicationError) and error.type:
        return error.type
    status = getattr(error, "status", None)  # python-libmaas CallError: MAAS said no
    if isinstance(status, int):
        return f"http_{status}"
    return type(error).__name__


def _count_machines(m: _MaasInstruments, handler: str, action: str, params: Any) -> None:
    """What a successful call did to machines, read from the call itself."""
    if (handler, action) == ("Machines", "allocate") and not params.get("dry_run"):
        m.acquired.add(1)
    elif (handler, action) == ("Machine", "release"):
        m.released.add(1)
    elif (handler, action) == ("Machine", "mark_broken"):
        m.quarantined.add(1)
    elif (handler, action) == ("Tag", "update_nodes") and params.get("name") == QUARANTINE_TAG:
        m.quarantined.add(len(params.get("add") or ()))


T = TypeVar("T")
MaasCall = Callable[..., Awaitable[T]]


def maas_call_metrics(call: MaasCall[T]) -> MaasCall[T]:
    """Wraps `MaasSessions.call(account, handler, action, shape, **params)`: counts and times
    every MAAS call by `Handler.action` and outcome, and the machines it moved."""

    @functools.wraps(call)
    async def measured(
        self: Any, account: Any, handler: str, action: str, shape: Any, **params: Any
    ) -> T:
        m = _maas_instruments()
        operation = f"{handler}.{action}"
        started = time.monotonic()
        error: BaseException | None = None
        try:
            answer = await call(self, account, handler, action, shape, **params)
        except BaseException as raised:
            error = raised
            raise
        finally:
            m.seconds.record(time.monotonic() - started, {"operation": operation})
            m.calls.add(1, {"operation": operation, "outcome": call_outcome(error)})
        _count_machines(m, handler, action, params)
        return answer

    return measured
