"""How long `metalgate cluster list --help` takes to start: the CLI's import cost.

Run: .venv/bin/python -m bench.cli_latency [runs]. Prints the median and the heavy modules
the command path imports (it should import neither FastAPI nor the agent).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMAND = [sys.executable, "-m", "cli", "cluster", "list", "--help"]
HEAVY = ("fastapi", "uvicorn", "sqlalchemy", "agent", "aiohttp", "temporalio")


def imported_heavy_modules() -> list[str]:
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", *COMMAND[1:]], capture_output=True, text=True
    ).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in trace.splitlines() if "|" in line}
    return sorted(n for n in names if n.split(".")[0] in HEAVY and "." not in n)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(COMMAND, capture_output=True, check=True)
        timings.append(time.perf_counter() - started)
    sys.stdout.write(
        f"metalgate cluster list --help: median {statistics.median(timings):.2f}s "
        f"over {runs} runs (min {min(timings):.2f}s)\n"
        f"heavy modules imported: {', '.join(imported_heavy_modules()) or 'none'}\n"
    )


if __name__ == "__main__":
    main()
