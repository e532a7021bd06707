"""How long `metalgate cluster list` takes end to end against a live API (issue 17: < 0.5 s).

The real API (tests/support/api_server.py's, on a temporary SQLite store; a read needs no
Temporal) holds `clusters` Running clusters of one project; the installed `metalgate` console
script lists them `runs` times with that project's viewer key, from an empty directory so no
`.env` or saved login leaks in. Prints the median, min and max wall time, the CLI's CPU time,
the heavy packages the command imported (it should import none) and the packages whose
import cost the most (`-X importtime` self time), the place to cut when the goal is missed.

Run: .venv/bin/python -m bench.cli_latency [runs] [clusters]
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import run_main, write_result
from bench.stack import seed_cluster_rows
from runtime.codec import new_key_spec
from tests.support.api_server import ADMIN_KEY, api_settings, running_api
from tests.support.ports import free_port

GOAL_SECONDS = 0.5
# Top-level packages a command that only talks to the API has no use for.
HEAVY = (
    "fastapi", "uvicorn", "sqlalchemy", "temporalio", "pydantic_settings", "aiohttp",
    "kubernetes_asyncio", "agent", "psutil", "cryptography",
)  # fmt: skip
# sys.modules once the command has run: `-X importtime` misses importlib.import_module's.
RUN_AND_LIST = """
import runpy, sys
sys.argv = ["metalgate", *sys.argv[1:]]
try:
    runpy.run_module("cli", run_name="__main__")
except SystemExit:
    pass
sys.stderr.write("\\n".join(["MODULES", *sys.modules]))
"""


def metalgate_command() -> list[str]:
    """The console script users run, next to this interpreter; `python -m cli` without one."""
    script = Path(sys.executable).with_name("metalgate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


async def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def loaded_modules(args: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    """Every module `metalgate <args>` has loaded once it is done."""
    _, _, err = await _run([sys.executable, "-c", RUN_AND_LIST, *args], env, cwd)
    return set(err.rsplit("MODULES\n", 1)[-1].splitlines())


def heavy_packages(modules: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


async def import_costs(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """The top-level packages whose own import time was largest, in ms (one run)."""
    _, _, err = await _run([sys.executable, "-X", "importtime", "-m", "cli", *args], env, cwd)
    costs: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        costs[package] = costs.get(package, 0.0) + int(self_us) / 1000
    costliest = sorted(costs.items(), key=lambda item: -item[1])[:8]
    return {name: round(ms, 1) for name, ms in costliest}


async def _project_key(url: str, clusters: int, database_url: str) -> str:
    """A project holding `clusters` Running clusters, and a viewer key of that project."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=admin, timeout=30) as http:
        project = (await http.post("/v1/projects", json={"name": "bench-cli"})).json()
        key = await http.post(
            f"/v1/projects/{project['id']}/api-keys", json={"name": "cli", "role": "viewer"}
        )
        key.raise_for_status()
    ids = [f"bench-cli-{n:04d}" for n in range(clusters)]
    await seed_cluster_rows(database_url, str(project["id"]), ids, "system")
    return str(key.json()["key"])


async def run(runs: int = 10, clusters: int = 50) -> dict[str, Any]:
    args = ["cluster", "list"]
    with tempfile.TemporaryDirectory(prefix="metalgate-bench-cli-") as tmp:
        folder = Path(tmp)
        work = folder / "cwd"
        work.mkdir()
        # A read needs no Temporal: the API connects on first use, and nothing here uses it.
        settings = api_settings(folder / "data", f"127.0.0.1:{free_port()}", [new_key_spec()])
        async with running_api(settings) as url:
            key = await _project_key(url, clusters, settings.resolved_database_url())
            env = {
                "METALGATE_API_URL": url,
                "METALGATE_API_KEY": key,
                "METALGATE_CONFIG_DIR": str(folder / "config"),
                "COLUMNS": "200",
            }
            command = [*metalgate_command(), *args]
            code, out, err = await _run(command, env, work)  # warm the page cache once
            listed = [line for line in out.splitlines() if "bench-cli-" in line]
            if code != 0 or len(listed) != clusters:
                raise RuntimeError(f"`metalgate cluster list` failed ({code}): {err or out}")
            wall, cpu = [], []
            for _ in range(runs):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                await _run(command, env, work)
                wall.append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            modules = await loaded_modules(args, env, work)
            costs = await import_costs(args, env, work)
    return {
        "command": " ".join(["metalgate", *args]),
        "runs": runs,
        "clusters": clusters,
        "median_s": round(statistics.median(wall), 3),
        "min_s": round(min(wall), 3),
        "max_s": round(max(wall), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "heavy_modules": heavy_packages(modules),
        "modules_loaded": len(modules),
        "import_ms_by_package": costs,
        "load_1m": round(os.getloadavg()[0], 1),
        "goal_s": GOAL_SECONDS,
    }


def summary(result: dict[str, Any]) -> str:
    costs = ", ".join(f"{name} {ms:g}" for name, ms in result["import_ms_by_package"].items())
    return (
        f"{result['command']} ({result['clusters']} clusters): median {result['median_s']} s, "
        f"min {result['min_s']} s, max {result['max_s']} s over {result['runs']} runs "
        f"(CPU {result['cpu_median_s']} s; load {result['load_1m']}); goal < {GOAL_SECONDS} s\n"
        f"heavy modules imported: {', '.join(result['heavy_modules']) or 'none'}\n"
        f"costliest imports (ms, self): {costs}"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    clusters = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    result = run_main(run(runs, clusters))
    write_result("cli_latency", result)
    sys.stdout.write(summary(result) + "\n")


if __name__ == "__main__":
    main()
