"""Running the node's tools (kubeadm, apt-get, systemctl): argv lists, never a shell.

Secrets never go into argv (anyone on the node can read it in /proc); the tools the agent
runs need none. Tests substitute a recording `CommandRunner`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

# What an error message keeps of a failed tool's output: its last lines say why.
OUTPUT_TAIL = 2000


class CommandFailed(RuntimeError):
    """A tool exited non-zero or ran past its timeout; the message ends with its output."""


class CommandRunner(Protocol):
    async def run(
        self, argv: Sequence[str], *, time_limit: float, env: Mapping[str, str] | None = None
    ) -> str:
        """Run `argv` to its end and return its output; CommandFailed otherwise."""
        ...


class SubprocessRunner:
    async def run(
        self, argv: Sequence[str], *, time_limit: float, env: Mapping[str, str] | None = None
    ) -> str:
        log.info("running %s", " ".join(argv))
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), time_limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise CommandFailed(f"{argv[0]} did not finish within {time_limit:.0f}s") from None
        text = output.decode(errors="replace")
        if process.returncode != 0:
            raise CommandFailed(
                f"{' '.join(argv)} exited {process.returncode}: {text[-OUTPUT_TAIL:]}"
            )
        return text
