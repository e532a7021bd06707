"""What an agent has done, kept on disk so a restarted agent neither repeats nor forgets it.

`<state dir>/state.json` (`/var/lib/metalgate/agent` on a real node, a directory per
machine for simulated ones) holds one `AgentState`: whether the admin kubeconfig was
reported, and per command its kind, the steps already finished and, once over, the final
result to report again if the answer to it was lost. Every change is written atomically
(temporary file, fsync, rename), so a crash leaves the old state or the new, never half.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from domain.agent_wire import CommandResult

STATE_FILE = "state.json"
REAL_NODE_STATE_DIR = Path("/var/lib/metalgate/agent")
# Finished commands remembered for re-reporting; older ones the API has long closed.
KEEP_FINISHED = 100


class CommandRecord(BaseModel):
    kind: str
    status: Literal["running", "finished"] = "running"
    done_steps: list[str] = Field(default_factory=list)
    final: CommandResult | None = None


class AgentState(BaseModel):
    format: Literal[1] = 1
    kubeconfig_reported: bool = False
    commands: dict[str, CommandRecord] = Field(default_factory=dict)


class StateStore:
    """The agent's state, saved to `directory` (None keeps it in memory: the fleet's nodes)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.state = AgentState()
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path | None:
        return self.directory / STATE_FILE if self.directory is not None else None

    async def load(self) -> AgentState:
        if self.path is not None:
            self.state = await asyncio.to_thread(_read, self.path)
        return self.state

    async def save(self) -> None:
        """Write the current state; callers change `state` first, then save."""
        finished = [cid for cid, r in self.state.commands.items() if r.status == "finished"]
        for command_id in finished[:-KEEP_FINISHED]:
            del self.state.commands[command_id]
        if self.path is None:
            return
        async with self._lock:
            await asyncio.to_thread(_write_atomically, self.path, self.state.model_dump_json())


def _read(path: Path) -> AgentState:
    if not path.exists():
        return AgentState()
    return AgentState.model_validate_json(path.read_bytes())


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
