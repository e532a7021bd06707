"""How fast the simulated node moves and how often it talks; all durations in seconds."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AgentTimings(BaseModel):
    """Defaults suit a demo (about 2 s to a ready control plane); benchmarks pass zeros."""

    kubeadm_init: float = Field(default=2.0, ge=0, description="total of all init phases")
    kubeadm_join: float = Field(default=1.0, ge=0, description="join delay of other nodes")
    upgrade_per_node: float = Field(default=0.5, ge=0)
    repave: float = Field(default=1.0, ge=0)
    heartbeat_interval: float = Field(default=5.0, gt=0)
    command_poll_interval: float = Field(default=2.0, gt=0)
    standby_command_poll_interval: float = Field(
        default=10.0,
        gt=0,
        description="other control planes, until the API hands them a command (they are named "
        "its runner, or took over from a replaced first control plane)",
    )
    request_timeout: float = Field(default=10.0, gt=0)
    backoff_initial: float = Field(default=0.2, gt=0)
    backoff_max: float = Field(default=10.0, gt=0)

    @classmethod
    def instant(cls) -> AgentTimings:
        """No simulated work at all: for benchmarks that measure the control plane."""
        return cls(kubeadm_init=0, kubeadm_join=0, upgrade_per_node=0, repave=0)
