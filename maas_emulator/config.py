"""Configuration of one emulator instance: where it listens, what it holds, how it misbehaves."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class FaultConfig(BaseModel):
    """Injected faults; changeable at run time through `/_emulator/faults`."""

    deploy_failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    fail_machines: list[str] = Field(
        default_factory=list, description="system ids or hostnames that always fail to deploy"
    )
    dead_machines: list[str] = Field(
        default_factory=list,
        description="system ids or hostnames whose hardware is dead: powered on they boot "
        "nothing, and every deploy fails",
    )
    http_503_rate: float = Field(0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(0, ge=0)
    lost_answer_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="share of POSTs applied whose answer is lost (a 503, or the connection cut)",
    )


class FaultUpdate(BaseModel):
    """Partial update of `FaultConfig`: only the fields given change."""

    deploy_failure_rate: float | None = Field(None, ge=0.0, le=1.0)
    fail_machines: list[str] | None = None
    dead_machines: list[str] | None = None
    http_503_rate: float | None = Field(None, ge=0.0, le=1.0)
    latency_ms: int | None = Field(None, ge=0)
    lost_answer_rate: float | None = Field(None, ge=0.0, le=1.0)


class EmulatorConfig(BaseModel):
    """Everything `build_app` needs; the CLI maps its options one to one onto these fields."""

    host: str = "127.0.0.1"
    port: int = 5240
    api_key: str | None = Field(
        None, description="admin key consumer:token:secret; generated (or reused) when absent"
    )
    machines: int = Field(10, ge=0, description="machines generated on first start")
    deploy_seconds: float = Field(5.0, ge=0.0)
    release_seconds: float = Field(2.0, ge=0.0)
    data_dir: Path = Path(".data/maas-emulator")
    inventory: Path | None = Field(
        None, description="YAML/JSON inventory used instead of generated machines"
    )
    faults: FaultConfig = Field(default_factory=FaultConfig)
    boot_hook_url: str | None = Field(
        None, description="URL the emulator POSTs deployed/released events to"
    )
    seed: int | None = None
    maas_name: str = "metalgate-maas"
