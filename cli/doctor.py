"""`metalgate doctor`: is the installation healthy, and if not, what to do about it.

Every check asks the API (the one thing a user's machine is sure to reach): the API itself
and its store, Temporal as the API sees it, whether a control-plane worker polls its queue,
each gateway's pollers and the MAAS its replicas reach, and the versions of the CLI, the API
and every gateway replica. A failing check carries its fix; any failure makes the exit code 1.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator

import typer
from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from cli.api_client import ApiClient, ApiError, ApiUnreachableError, Json
from cli.exit_codes import ExitCode
from cli.login import load_credentials
from cli.output import OutputFormat, OutputOption, console, print_json


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    fix: str = ""


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(output: OutputOption = OutputFormat.TABLE) -> None:
    """Check the API, Temporal, each gateway (pollers, MAAS) and version skew, with fixes."""
    creds = load_credentials()
    key = creds.api_key.get_secret_value() if creds.api_key else None
    with ApiClient(creds.api_url, key) as api:
        checks = list(run_checks(api, has_key=key is not None))
    failed = [c for c in checks if not c.ok]
    if output is OutputFormat.JSON:
        print_json({"ok": not failed, "checks": [c.model_dump() for c in checks]})
    else:
        _print(checks)
        console.print(
            f"{len(checks) - len(failed)} of {len(checks)} checks passed"
            + (f"; {len(failed)} failed" if failed else ""),
            highlight=False,
        )
    if failed:
        raise typer.Exit(int(ExitCode.FAILED))


def run_checks(api: ApiClient, *, has_key: bool) -> Iterator[Check]:
    """The checks in the order a person would fix them: each later one needs the earlier."""
    try:
        health = api.health()
        ready = api.request("GET", "/readyz")
    except ApiUnreachableError as error:
        yield Check(
            name="api",
            ok=False,
            detail=error.message,
            fix="start it (`metalgate up`, or `metalgate server api`), or point the CLI at it "
            "with `metalgate login --api-url URL` or METALGATE_API_URL",
        )
        return
    except ApiError as error:
        yield _api_not_ready(api, error)
        return
    yield Check(name="api", ok=True, detail=f"{api.base_url} answers, its store is ready")
    temporal_ok = ready.get("temporal") == "ok"
    yield Check(
        name="temporal",
        ok=temporal_ok,
        detail="the API reaches Temporal"
        if temporal_ok
        else "the API cannot reach Temporal: clusters cannot be created, changed or deleted",
        fix=""
        if temporal_ok
        else "start Temporal (`metalgate up` runs one), or fix the API's "
        "METALGATE_TEMPORAL_ADDRESS; `metalgate server api` logs what it tried",
    )
    worker = control_plane_check(ready)
    if worker is not None:
        yield worker
    if not has_key:
        yield Check(
            name="api key",
            ok=False,
            detail="no API key, so gateways cannot be checked",
            fix="run `metalgate login --api-url URL --api-key KEY` or set METALGATE_API_KEY",
        )
        return
    try:
        gateways = api.list_gateways()
    except ApiError as error:
        yield Check(
            name="api key",
            ok=False,
            detail=error.message,
            fix="run `metalgate login` with a valid key, or set METALGATE_API_KEY",
        )
        return
    if not gateways:
        yield Check(
            name="gateways",
            ok=False,
            detail="the project has no gateway: no cluster can be created",
            fix="`metalgate gateway create --name NAME`, then run the register command it prints "
            "inside the private network, next to MAAS",
        )
    for gateway in gateways:
        yield from gateway_checks(gateway)
    yield version_check(_cli_version(), health.get("version"), gateways)


def control_plane_check(ready: Json) -> Check | None:
    """Whether a control-plane worker takes the lifecycle workflows' tasks (from /readyz)."""
    pollers = ready.get("control_plane_pollers")
    if ready.get("temporal") != "ok" or pollers is None:
        return None  # the temporal check says why; an older API does not report workers
    if pollers:
        return Check(
            name="control-plane worker",
            ok=True,
            detail=f"{pollers} worker(s) polling the control-plane task queue",
        )
    return Check(
        name="control-plane worker",
        ok=False,
        detail="no worker polls the control-plane task queue: no cluster is created, changed "
        "or deleted (the API accepts the request, the workflow waits)",
        fix="start one: `metalgate worker control-plane` (`metalgate up` runs it), with the "
        "API's METALGATE_TEMPORAL_ADDRESS; Temporal lists a stopped worker for about a minute",
    )


def _api_not_ready(api: ApiClient, error: ApiError) -> Check:
    store = error.detail.get("store") if isinstance(error.detail, dict) else None
    return Check(
        name="api",
        ok=False,
        detail=f"{api.base_url} answers HTTP {error.status}"
        + (f"; its store is {store}" if store else ""),
        fix="check the API's METALGATE_DATABASE_URL and that the database runs; the API's "
        "log says why it is not ready",
    )


def gateway_checks(gateway: Json) -> Iterator[Check]:
    """Whether the gateway polls its queue, and whether its replicas reach their MAAS."""
    name = f"gateway {gateway['name']} ({gateway['id']})"
    status = gateway["status"]
    if status == "revoked":
        return  # revoked on purpose: nothing should poll it
    polling = status == "online" and gateway.get("replicas", 0) > 0
    if polling:
        detail = f"{gateway['replicas']} replica(s) polling {gateway['task_queue']}"
        fix = ""
    elif status == "pending":
        detail = "created but never registered"
        fix = (
            "run `metalgate gateway register --api-url URL --token TOKEN` next to MAAS "
            "(a new token: `metalgate gateway create`)"
        )
    elif gateway.get("system"):
        detail = f"nobody polls {gateway['task_queue']}: {gateway.get('status_detail', '')}"
        fix = "start the system gateway: `metalgate worker system-gateway` (`metalgate up` runs it)"
    else:
        detail = f"nobody polls {gateway['task_queue']}: {gateway.get('status_detail', '')}"
        fix = (
            "start it on its host in the private network: `metalgate gateway run "
            "--config PATH` (check its log for why it stopped)"
        )
    yield Check(name=f"{name} polling", ok=polling, detail=detail, fix=fix)
    yield from _maas_checks(name, gateway)


def _maas_checks(name: str, gateway: Json) -> Iterator[Check]:
    reach: dict[str, list[str]] = {}
    unreached: dict[str, list[str]] = {}
    for replica in gateway.get("replica_heartbeats") or []:
        for url, ok in (replica.get("maas_reachable") or {}).items():
            (reach if ok else unreached).setdefault(url, []).append(replica["replica_id"])
    for url, replicas in sorted(unreached.items()):
        yield Check(
            name=f"{name} MAAS",
            ok=False,
            detail=f"{', '.join(replicas)} cannot reach MAAS at {url}",
            fix="check from the gateway host that MAAS answers (`curl "
            f"{url.rstrip('/')}/api/2.0/describe/`), the gateway's proxy settings, and the "
            "cloud account's MAAS URL",
        )
    for url in sorted(set(reach) - set(unreached)):
        yield Check(name=f"{name} MAAS", ok=True, detail=f"reaches MAAS at {url}")
    if not reach and not unreached:
        yield Check(name=f"{name} MAAS", ok=True, detail="has not been asked to reach a MAAS yet")


def version_check(cli: str | None, api: str | None, gateways: list[Json]) -> Check:
    """Every component should run the API's version; the CLI and gateways are upgraded to it."""
    behind: list[str] = []
    if cli and api and cli != api:
        behind.append(f"this CLI runs {cli}")
    for gateway in gateways:
        for replica in gateway.get("replica_heartbeats") or []:
            if api and replica.get("version") and replica["version"] != api:
                behind.append(
                    f"gateway {gateway['name']} replica {replica['replica_id']} runs "
                    f"{replica['version']}"
                )
    if not behind:
        return Check(name="versions", ok=True, detail=f"everything runs {api or cli or '?'}")
    return Check(
        name="versions",
        ok=False,
        detail=f"the API runs {api}, but " + "; ".join(behind),
        fix=f"install metalgate {api} there (`pip install metalgate=={api}`) and restart it",
    )


def _cli_version() -> str | None:
    try:
        return importlib.metadata.version("metalgate")
    except importlib.metadata.PackageNotFoundError:
        return None


def _print(checks: list[Check]) -> None:
    table = Table(show_edge=False, header_style="bold")
    for header in ("Check", "Result", "Detail", "Fix"):
        table.add_column(header, overflow="fold")
    for check in checks:
        result = Text("ok", "green") if check.ok else Text("FAIL", "red")
        table.add_row(Text(check.name), result, Text(check.detail), Text(check.fix or "-"))
    console.print(table)
