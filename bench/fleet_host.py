"""The fleet simulator behind the emulator's boot hook, as its own process.

Benchmarks use it instead of the agent runtime: thousands of light agents in one scheduler
loop, with instant kubeadm, so the lifecycle measures the control plane, not the agents.

    python -m bench.fleet_host --port 8091 --heartbeat-interval 30
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from agent.fleet import Fleet
from agent.runtime import serve
from agent.timings import AgentTimings


async def _host(port: int, heartbeat_interval: float) -> None:
    timings = AgentTimings.instant().model_copy(update={"heartbeat_interval": heartbeat_interval})
    fleet = Fleet(timings=timings)
    fleet.start()
    task = asyncio.create_task(serve("127.0.0.1", port, fleet))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--heartbeat-interval", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(_host(args.port, args.heartbeat_interval))


if __name__ == "__main__":
    main()
