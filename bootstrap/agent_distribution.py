"""`metalgate-agent`: the agent-only wheel a node installs, built from this source tree.

The project itself needs Python 3.11 exactly (python-libmaas imports distutils) and pulls
Temporal, MAAS, FastAPI and SQLAlchemy; a node has stock Ubuntu's python3 and needs none of
them. This distribution holds only the import closure of `metalgate agent run` (the agent,
the `domain` wire modules it imports, `runtime.logs` and the two CLI modules), at the control
plane's version, with only the agent's runtime dependencies.

    python -m bootstrap.agent_distribution <source tree> <wheel dir>   # what the Dockerfile runs
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

DISTRIBUTION = "metalgate-agent"
# Whole packages, then single modules (with their package's __init__.py): the closure of
# cli/agent_main.py, checked by tests/agent/test_agent_package.py in a venv of its own.
PACKAGES = ("agent",)
MODULES = (
    "domain/agent_wire.py",
    "domain/gateway.py",
    "domain/text.py",
    "domain/versions.py",
    "runtime/logs.py",
    "cli/agent_run.py",
    "cli/agent_main.py",
)
# The main project's requirement (same version bounds) for each of these.
DEPENDENCIES = ("httpx", "pydantic", "pyyaml", "kubernetes_asyncio", "aiohttp", "typer")
CONSOLE_SCRIPT = "metalgate = cli.agent_main:app"
BUILD_SECONDS = 300.0


def wheel_name(version: str) -> str:
    """The file setuptools writes: the project name normalised to `metalgate_agent`."""
    return f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl"


def build(source: Path, scratch: Path, out: Path) -> Path:
    """Lay the agent's files and a generated pyproject out in `scratch`, build into `out`."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    tree = scratch / "src"
    _copy_tree(source, tree)
    (tree / "pyproject.toml").write_text(_pyproject(project))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(out), str(tree)],
        check=True, capture_output=True, timeout=BUILD_SECONDS,
    )  # fmt: skip
    return out / wheel_name(project["version"])


def _copy_tree(source: Path, tree: Path) -> None:
    tree.mkdir(parents=True)
    shutil.copy2(source / "README.md", tree / "README.md")
    for package in PACKAGES:
        shutil.copytree(
            source / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for module in MODULES:
        target = tree / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / module, target)
        init = source / Path(module).parent / "__init__.py"
        shutil.copy2(init, target.parent / "__init__.py")


def _pyproject(project: dict[str, object]) -> str:
    requirements = project["dependencies"]
    assert isinstance(requirements, list)
    wanted = {_canonical(d) for d in DEPENDENCIES}
    kept = [r for r in requirements if _name(r) in wanted]
    missing = wanted - {_name(r) for r in kept}
    if missing:
        raise ValueError(f"pyproject.toml no longer lists the agent's {sorted(missing)}")
    dependencies = "".join(f"  {_toml_string(r)},\n" for r in kept)
    script_name, _, target = CONSOLE_SCRIPT.partition(" = ")
    return (
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{DISTRIBUTION}"\nversion = "{project["version"]}"\n'
        'description = "The metalgate cluster agent, as a node installs it"\n'
        'readme = "README.md"\n'
        # No upper bound: the agent imports nothing that left the standard library.
        'requires-python = ">=3.11"\n'
        f"dependencies = [\n{dependencies}]\n\n"
        f'[project.scripts]\n{script_name} = "{target}"\n\n'
        "[tool.setuptools.packages.find]\n"
        'include = ["agent*", "domain", "runtime", "cli"]\n'
    )


def _name(requirement: str) -> str:
    return _canonical(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="metalgate-agent-wheel-") as scratch:
        build(source, Path(scratch), out)


if __name__ == "__main__":
    main()
