"""The running emulator's parts, shared by the HTTP handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from maas_emulator.config import EmulatorConfig
from maas_emulator.faults import Faults
from maas_emulator.hooks import HookRunner
from maas_emulator.requests import RequestLog
from maas_emulator.state import State
from maas_emulator.statemachine import Lifecycle


@dataclass
class Emulator:
    config: EmulatorConfig
    state: State
    faults: Faults
    hooks: HookRunner
    lifecycle: Lifecycle
    admin_api_key: str
    requests: RequestLog = field(default_factory=RequestLog)
