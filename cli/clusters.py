"""`metalgate cluster ...`: create, watch, act on and delete clusters through the API."""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from pydantic import BaseModel, ValidationError
from rich.live import Live

from cli import cluster_operations
from cli.api_client import ApiClient, ApiError
from cli.cluster_operations import ClusterId, show_plan
from cli.cluster_view import ClusterView, create_workflow_link, management_line, reason_line
from cli.exit_codes import ExitCode
from cli.login import client
from cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    console,
    emit_list,
    emit_message,
    emit_object,
    err_console,
    fail,
    handles_api_errors,
    print_json,
)
from domain.phases import MANAGED_PHASES, Phase

if TYPE_CHECKING:
    # Imported where used: `cluster list` must not pay for YAML and the spec models.
    from domain.cluster import ClusterSpec

POLL_INTERVAL = 1.0
NODE_ACTIONS = {
    "cordon": "Mark a node unschedulable (its pods stay), through the cluster's agent.",
    "drain": "Cordon a node and evict its pods, honouring PodDisruptionBudgets.",
    "uncordon": "Mark a node schedulable again.",
}
NodeName = Annotated[str, typer.Argument(help="Hostname or system ID of the node.")]

CLUSTER_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("Name", "name"),
    ("Phase", "phase"),
    ("Reason", "reason"),
    ("Version", "kubernetes_version"),
    ("Nodes", lambda c: len(c.get("machines") or [])),
    ("Created", "created_at"),
]
CLUSTER_FIELDS: list[Column] = [
    ("ID", "id"),
    ("Name", "name"),
    ("Phase", "phase"),
    ("Reason", reason_line),
    ("Kubernetes", "kubernetes_version"),
    ("Cloud account", "cloud_account_id"),
    ("Gateway", "gateway_id"),
    ("Agent", lambda c: "silent" if c.get("agent_silent") else c.get("last_heartbeat_at")),
    ("Management", management_line),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
    ("Temporal UI", "temporal_ui_url"),
]
MACHINE_COLUMNS: list[Column] = [
    ("Hostname", "hostname"),
    ("System ID", "system_id"),
    ("Pool", "pool"),
    ("Zone", "zone"),
    ("Status", "status"),
    ("IP", "ip_addresses"),
    ("Remediation", "remediation"),
]
POOL_COLUMNS: list[Column] = [
    ("Pool", "name"),
    ("Role", "role"),
    ("Nodes", lambda p: f"{p['machines']}/{p['count']}"),
    ("Zones", lambda p: ", ".join(p["zones"]) or "any"),
    ("Spread", lambda p: ", ".join(f"{z['zone']}: {z['machines']}" for z in p["by_zone"])),
]
CONDITION_COLUMNS: list[Column] = [
    ("Condition", "type"),
    ("Status", "status"),
    ("Reason", "reason"),
    ("Message", "message"),
    ("Since", "last_transition_time"),
]
EVENT_COLUMNS: list[Column] = [
    ("Time", "at"),
    ("Phase", "phase"),
    ("Reason", "reason"),
    ("Message", "message"),
]

WaitOption = Annotated[bool, typer.Option(help="Watch until the cluster reaches its goal.")]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds --wait watches before giving up (exit code 6).")
]


def _message(error: Any) -> str:
    """Pydantic's message, plus the nearest known field for a misspelt one."""
    from domain.cluster import ClusterSpec

    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    *parent, name = error["loc"]
    known = _fields_at(ClusterSpec, [p for p in parent if isinstance(p, str)])
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"did you mean `{close[0]}`?" if close else f"known fields: {', '.join(known)}"
    return f"unknown field; {hint}"


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the model found by following `path` from `model`."""
    for name in path:
        field = model.model_fields.get(name)
        nested = _model_in(field.annotation) if field else None
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_spec(path: Path, fmt: OutputFormat) -> tuple[ClusterSpec, str | None]:
    """The spec in a YAML file and its optional `cloud_account_id`; exits USAGE when invalid."""
    import yaml

    from domain.cluster import ClusterSpec

    try:
        # Loaded from the stream so that YAML errors name the file, not "<unicode string>".
        with path.open() as stream:
            document = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as exc:
        fail(ExitCode.USAGE, f"cannot read {path}: {exc}", fmt)
    if not isinstance(document, dict):
        fail(ExitCode.USAGE, f"{path} must hold a mapping of cluster spec fields", fmt)
    account = document.pop("cloud_account_id", None)
    try:
        return ClusterSpec.model_validate(document), account
    except ValidationError as exc:
        # Checked here so a typo is reported before anything reaches the API.
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": _message(e)}
            for e in exc.errors()
        ]
        lines = "; ".join(f"{e['field'] or 'spec'}: {e['message']}" for e in errors)
        fail(ExitCode.USAGE, f"invalid spec in {path}: {lines}", fmt, errors=errors)


def pick_account(api: ApiClient, fmt: OutputFormat) -> str:
    """The project's only cloud account; with none or several, the user must name one."""
    accounts = api.list_accounts()
    if len(accounts) == 1:
        return str(accounts[0]["id"])
    names = ", ".join(f"{a['name']} ({a['id']})" for a in accounts) or "none yet"
    fail(ExitCode.USAGE, f"pass --account ID; the project's cloud accounts: {names}", fmt)


def watch(
    api: ApiClient,
    cluster_id: str,
    *,
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
    fmt: OutputFormat,
    view: ClusterView | None = None,
    follow: str | None = None,
) -> dict[str, Any] | None:
    """Poll a cluster until `done` says so; None if it disappeared (deleted), exits on timeout."""
    deadline = time.monotonic() + timeout
    view = view or ClusterView()
    # The live view is for people at a terminal; scripts (-o json) get only the final document.
    live = Live(view, console=console, refresh_per_second=4, transient=False)
    if fmt is OutputFormat.TABLE:
        live.start()
    try:
        while True:
            try:
                cluster = api.get_cluster(cluster_id)
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
            view.update(cluster)
            if fmt is OutputFormat.TABLE:
                live.refresh()
            if done(cluster):
                return cluster
            if time.monotonic() > deadline:
                fail(
                    ExitCode.WAIT_TIMEOUT,
                    f"gave up waiting after {timeout:.0f}s: cluster {cluster_id} is still "
                    f"{cluster.get('phase')} and keeps going; follow it with "
                    f"`{follow or f'metalgate cluster get {cluster_id}'}`",
                    fmt,
                )
            time.sleep(POLL_INTERVAL)
    finally:
        if live.is_started:
            live.stop()


def finish(cluster: dict[str, Any], fmt: OutputFormat, *, goal: Phase) -> None:
    """Print the outcome and exit FAILED unless the cluster reached `goal`."""
    if fmt is OutputFormat.JSON:
        print_json(cluster)
    phase = cluster.get("phase")
    if phase == goal:
        if fmt is OutputFormat.TABLE:
            console.print(f"[green]Cluster {cluster['name']} is {phase}.[/green]")
        return
    fail(ExitCode.FAILED, f"cluster {cluster['name']} is {phase}: {reason_line(cluster)}", fmt)


# How the manage workflow's event line for an action's end begins, after the action id.
ACTION_ENDS = ("succeeded", "failed", "stopped", "skipped")


def follow_hint(cluster_id: str) -> str:
    """Said when an action is accepted without --wait: exit 0 means accepted, not done."""
    return (
        f"Its outcome (it may still fail, e.g. InsufficientCapacity) shows in "
        f"`metalgate cluster events {cluster_id}` and `metalgate cluster get {cluster_id}`; "
        "--wait waits for it and exits with it."
    )


def wait_action(
    api: ApiClient,
    cluster_id: str,
    answer: dict[str, Any],
    *,
    working: Phase,
    timeout: float,
    fmt: OutputFormat,
) -> None:
    """Watch the cluster until the event that ends the accepted action; exit with its outcome."""
    action_id = str(answer["action_id"])
    outcome: list[str] = []
    seen = 0

    def ended(cluster: dict[str, Any]) -> bool:
        nonlocal seen
        for event in api.cluster_events(cluster_id, after=seen):
            seen = max(seen, int(event["id"]))
            message = str(event["message"])
            rest = message.removeprefix(f"{action_id} ")
            if rest != message and rest.split(" ", 1)[0].rstrip(":") in ACTION_ENDS:
                outcome.append(message)
        return bool(outcome)

    view = ClusterView(phases=(working, Phase.RUNNING))
    final = watch(
        api,
        cluster_id,
        done=ended,
        timeout=timeout,
        fmt=fmt,
        view=view,
        follow=f"metalgate cluster events {cluster_id}",
    )
    if final is None:
        fail(ExitCode.FAILED, f"cluster {cluster_id} was deleted during {action_id}", fmt)
    line = outcome[0]
    if fmt is OutputFormat.JSON:
        print_json({**answer, "outcome": line, "cluster": final})
    if line.startswith(f"{action_id} succeeded"):
        if fmt is OutputFormat.TABLE:
            console.print(line, style="green", markup=False)
        return
    fail(ExitCode.FAILED, line, fmt)


def resolve_cluster(api: ApiClient, ref: str) -> str:
    """The id of the cluster named or identified by `ref`; unknown refs go on to the API's 404."""
    for cluster in api.list_clusters():
        if ref in (cluster["id"], cluster["name"]):
            return str(cluster["id"])
    return ref


def register(app: typer.Typer) -> None:
    cluster_app = typer.Typer(help="Kubernetes clusters on MAAS machines.", no_args_is_help=True)
    app.add_typer(cluster_app, name="cluster")
    cluster_operations.register(cluster_app)

    @cluster_app.command("create")
    @handles_api_errors
    def create(
        file: Annotated[
            Path,
            typer.Option("--file", "-f", help="YAML cluster spec.", exists=True, dir_okay=False),
        ],
        account: Annotated[
            str | None,
            typer.Option(help="Cloud account ID; default: the spec's, or the project's only one."),
        ] = None,
        wait: WaitOption = False,
        timeout: TimeoutOption = 3600.0,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create a cluster; with --wait, watch its phases and machines until it runs or fails."""
        spec, spec_account = load_spec(file, output)
        with client(output) as api:
            account_id = account or spec_account or pick_account(api, output)
            cluster = api.create_cluster(spec, cloud_account_id=account_id)
            if not wait:
                emit_object(cluster, output, CLUSTER_FIELDS)
                return
            final = watch(api, cluster["id"], done=_create_settled, timeout=timeout, fmt=output)
        if final is None:
            fail(ExitCode.FAILED, f"cluster {spec.name} was deleted while it was created", output)
        if output is OutputFormat.TABLE:
            console.print(f"Create workflow: {create_workflow_link(final)}", markup=False)
        finish(final, output, goal=Phase.RUNNING)

    @cluster_app.command("list")
    @handles_api_errors
    def list_(
        phase: Annotated[Phase | None, typer.Option(help="Only clusters in this phase.")] = None,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """List the project's clusters."""
        with client(output) as api:
            clusters = api.list_clusters(phase=phase.value if phase else None)
        emit_list(clusters, output, CLUSTER_COLUMNS)

    @cluster_app.command("get")
    @handles_api_errors
    def get(cluster_id: ClusterId, output: OutputOption = OutputFormat.TABLE) -> None:
        """Show a cluster: phase, reason, pools and their zones, machines and conditions."""
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            cluster = api.get_cluster(cluster_id)
        emit_object(cluster, output, CLUSTER_FIELDS)
        if output is OutputFormat.TABLE:
            for title, key, columns in (
                ("Pools", "pools", POOL_COLUMNS),
                ("Machines", "machines", MACHINE_COLUMNS),
                ("Conditions", "conditions", CONDITION_COLUMNS),
            ):
                if cluster.get(key):
                    console.print(f"\n[bold]{title}[/bold]")
                    emit_list(cluster[key], output, columns)

    @cluster_app.command("delete")
    @handles_api_errors
    def delete(
        cluster_id: ClusterId,
        wait: WaitOption = False,
        timeout: TimeoutOption = 1800.0,
        force: Annotated[
            bool,
            typer.Option(
                help="Finish a delete stuck for force_delete_after seconds without the gateway; "
                "what MAAS still holds is listed and released by the orphan sweeper later."
            ),
        ] = False,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Delete a cluster and release its machines (also stops a create in progress)."""
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            cluster = api.delete_cluster(cluster_id, force=force)
            if not wait:
                verb = "Force-deleting" if force else "Deleting"
                emit_message(f"{verb} cluster {cluster_id}", output, cluster)
                return
            view = ClusterView(phases=(Phase.DELETING, Phase.DELETED))
            final = watch(
                api, cluster_id, done=_delete_settled, timeout=timeout, fmt=output, view=view
            )
        if final is None:
            emit_message(f"Cluster {cluster_id} is Deleted.", output, {"id": cluster_id})
            return
        finish(final, output, goal=Phase.DELETED)

    @cluster_app.command("kubeconfig")
    @handles_api_errors
    def kubeconfig(
        cluster_id: ClusterId,
        output: Annotated[
            str,
            typer.Option(
                "--output",
                "-o",
                help="A file to write (mode 0600), or json; default: the YAML on stdout.",
            ),
        ] = "-",
    ) -> None:
        """Print or save the cluster's admin kubeconfig."""
        fmt = OutputFormat.JSON if output == OutputFormat.JSON else OutputFormat.TABLE
        with client(fmt) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            config = api.kubeconfig(cluster_id)
        if output == "-":
            typer.echo(config, nl=not config.endswith("\n"))
        elif fmt is OutputFormat.JSON:
            print_json({"cluster_id": cluster_id, "kubeconfig": config})
        else:
            _write_private(Path(output), config)
            err_console.print(f"Wrote {output}")

    @cluster_app.command("upgrade")
    @handles_api_errors
    def upgrade(
        cluster_id: ClusterId,
        version: Annotated[str, typer.Option(help="Target Kubernetes version, e.g. v1.31.1.")],
        wait: WaitOption = False,
        timeout: TimeoutOption = 1800.0,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Upgrade Kubernetes node by node (works with the gateway down)."""
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            answer = api.upgrade_cluster(cluster_id, kubernetes_version=version)
            if wait:
                wait_action(
                    api, cluster_id, answer, working=Phase.UPGRADING, timeout=timeout, fmt=output
                )
                return
        emit_message(
            f"Upgrading cluster {cluster_id} to {version} (action {answer['action_id']}). "
            + follow_hint(cluster_id),
            output,
            answer,
        )

    @cluster_app.command("scale")
    @handles_api_errors
    def scale(
        cluster_id: ClusterId,
        pool: Annotated[str, typer.Option(help="Node pool name.")],
        count: Annotated[int, typer.Option(help="Desired number of nodes.", min=0)],
        wait: WaitOption = False,
        timeout: TimeoutOption = 1800.0,
        dry_run: Annotated[
            bool, typer.Option(help="Only plan: what MAAS would hand the pool; changes nothing.")
        ] = False,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Resize a node pool (needs the gateway: it acquires or releases machines)."""
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            if dry_run:
                show_plan(
                    api.scale_cluster(cluster_id, pool=pool, count=count, dry_run=True), output
                )
                return
            answer = api.scale_cluster(cluster_id, pool=pool, count=count)
            if wait:
                wait_action(
                    api, cluster_id, answer, working=Phase.SCALING, timeout=timeout, fmt=output
                )
                return
        emit_message(
            f"Scaling pool {pool} of cluster {cluster_id} to {count} "
            f"(action {answer['action_id']}). " + follow_hint(cluster_id),
            output,
            answer,
        )

    @cluster_app.command("repave")
    @handles_api_errors
    def repave(
        cluster_id: ClusterId,
        node: Annotated[
            str | None, typer.Option(help="Hostname or system ID of one node to replace.")
        ] = None,
        pool: Annotated[
            str | None, typer.Option(help="Replace every node of this pool, rolling.")
        ] = None,
        wait: WaitOption = False,
        timeout: TimeoutOption = 3600.0,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Replace a node, or a whole pool (rolling), with freshly deployed MAAS machines.

        How is the pool's `repave` setting: strategy auto | expand-first | contract-first,
        max_surge, max_unavailable. Needs the gateway: it acquires and releases machines."""
        if (node is None) == (pool is None):
            fail(ExitCode.USAGE, "name either --node (one node) or --pool (the whole pool)", output)
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            answer = api.repave_cluster(cluster_id, node=node, pool=pool)
            if wait:
                wait_action(
                    api, cluster_id, answer, working=Phase.REPAVING, timeout=timeout, fmt=output
                )
                return
        what = f"node {node}" if node is not None else f"pool {pool}"
        emit_message(
            f"Repaving {what} of cluster {cluster_id} (action {answer['action_id']}). "
            + follow_hint(cluster_id),
            output,
            answer,
        )

    for action, help_text in NODE_ACTIONS.items():
        _register_node_action(cluster_app, action, help_text)

    @cluster_app.command("events")
    @handles_api_errors
    def events(cluster_id: ClusterId, output: OutputOption = OutputFormat.TABLE) -> None:
        """The cluster's event log, oldest first."""
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            emit_list(api.cluster_events(cluster_id), output, EVENT_COLUMNS)


def _register_node_action(cluster_app: typer.Typer, action: str, help_text: str) -> None:
    """`metalgate cluster cordon|drain|uncordon <cluster> <node>`."""

    @cluster_app.command(action, help=help_text)
    @handles_api_errors
    def run(
        cluster_id: ClusterId,
        node: NodeName,
        wait: WaitOption = False,
        timeout: TimeoutOption = 1800.0,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        with client(output) as api:
            cluster_id = resolve_cluster(api, cluster_id)
            answer = api.node_action(cluster_id, node, action)
            if wait:
                wait_action(
                    api, cluster_id, answer, working=Phase.RUNNING, timeout=timeout, fmt=output
                )
                return
        emit_message(
            f"{action.capitalize()} of node {node} of cluster {cluster_id} queued "
            f"(action {answer['action_id']}). " + follow_hint(cluster_id),
            output,
            answer,
        )


def _create_settled(cluster: dict[str, Any]) -> bool:
    return cluster.get("phase") in (*MANAGED_PHASES, Phase.FAILED, Phase.DELETING, Phase.DELETED)


def _delete_settled(cluster: dict[str, Any]) -> bool:
    return cluster.get("phase") in (Phase.DELETED, Phase.FAILED)


def _write_private(path: Path, content: str) -> None:
    """Kubeconfigs hold cluster-admin credentials: never world-readable, even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)
