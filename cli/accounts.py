"""`metalgate account create|list|move|delete`: cloud accounts bind the project to one MAAS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.exit_codes import ExitCode
from cli.login import client
from cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    emit_list,
    emit_message,
    emit_object,
    fail,
    handles_api_errors,
)

ACCOUNT_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("Name", "name"),
    ("MAAS URL", "maas_url"),
    ("Gateway", "gateway_id"),
    ("Key", lambda a: a.get("maas_api_key_fingerprint") or "-"),
    ("MAAS version", "maas_version"),
    ("Machines ready", lambda a: f"{a.get('ready_machines', '-')}/{a.get('machines', '-')}"),
    ("Validated", "validated_at"),
]
AccountArg = Annotated[str, typer.Argument(help="Cloud account ID or name.")]


def register(app: typer.Typer) -> None:
    account_app = typer.Typer(
        help="Cloud accounts: which MAAS, through which gateway.", no_args_is_help=True
    )
    app.add_typer(account_app, name="account")

    @account_app.command("create")
    @handles_api_errors
    def create(
        name: Annotated[str, typer.Option(help="Account name, unique in the project.")],
        maas_url: Annotated[str, typer.Option(help="MAAS base URL, e.g. http://maas:5240/MAAS/")],
        maas_api_key: Annotated[
            str | None,
            typer.Option(
                help="MAAS API key (consumer:token:secret). Visible in `ps`; prefer the file."
            ),
        ] = None,
        maas_api_key_file: Annotated[
            Path | None,
            typer.Option(help="File holding the MAAS API key.", exists=True, dir_okay=False),
        ] = None,
        gateway: Annotated[
            str | None,
            typer.Option(help="ID or name of the private cloud gateway that reaches MAAS."),
        ] = None,
        system_gateway: Annotated[
            bool,
            typer.Option(help="Reach MAAS through the system gateway (self-hosted mode only)."),
        ] = False,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create a cloud account; the API validates it through its gateway first."""
        key = _key_through_gateway(maas_api_key, maas_api_key_file, gateway, system_gateway, output)
        with client(output) as api:
            account = api.create_account(
                name=name,
                maas_url=maas_url,
                maas_api_key=key,
                gateway_id=api.resolve("gateways", gateway) if gateway else None,
                use_system_gateway=system_gateway,
            )
        emit_object(account, output, ACCOUNT_COLUMNS)

    @account_app.command("move")
    @handles_api_errors
    def move(
        account_id: AccountArg,
        maas_api_key: Annotated[
            str | None,
            typer.Option(
                help="MAAS API key (consumer:token:secret). Visible in `ps`; prefer the file."
            ),
        ] = None,
        maas_api_key_file: Annotated[
            Path | None,
            typer.Option(help="File holding the MAAS API key.", exists=True, dir_okay=False),
        ] = None,
        gateway: Annotated[
            str | None, typer.Option(help="ID or name of the private cloud gateway to move it to.")
        ] = None,
        system_gateway: Annotated[
            bool, typer.Option(help="Move it to the system gateway (self-hosted mode only).")
        ] = False,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Move an account to a gateway, with its MAAS key again (sealed to that gateway)."""
        key = _key_through_gateway(maas_api_key, maas_api_key_file, gateway, system_gateway, output)
        with client(output) as api:
            account = api.move_account(
                api.resolve("cloud-accounts", account_id),
                maas_api_key=key,
                gateway_id=api.resolve("gateways", gateway) if gateway else None,
                use_system_gateway=system_gateway,
            )
        emit_object(account, output, ACCOUNT_COLUMNS)

    @account_app.command("list")
    @handles_api_errors
    def list_(output: OutputOption = OutputFormat.TABLE) -> None:
        """List the project's cloud accounts (MAAS keys are never shown)."""
        with client(output) as api:
            emit_list(api.list_accounts(), output, ACCOUNT_COLUMNS)

    @account_app.command("delete")
    @handles_api_errors
    def delete(
        account_id: AccountArg,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Delete a cloud account; the API refuses while clusters use it."""
        with client(output) as api:
            account_id = api.resolve("cloud-accounts", account_id)
            api.delete_account(account_id)
        emit_message(f"Deleted cloud account {account_id}", output, {"id": account_id})


def _key_through_gateway(
    maas_api_key: str | None,
    maas_api_key_file: Path | None,
    gateway: str | None,
    system_gateway: bool,
    output: OutputFormat,
) -> str:
    """The MAAS key from exactly one of its options, checked with exactly one gateway."""
    if (maas_api_key is None) == (maas_api_key_file is None):
        fail(ExitCode.USAGE, "give exactly one of --maas-api-key or --maas-api-key-file", output)
    if (gateway is None) == (not system_gateway):
        fail(ExitCode.USAGE, "give exactly one of --gateway ID|NAME or --system-gateway", output)
    key = maas_api_key if maas_api_key_file is None else maas_api_key_file.read_text().strip()
    return key or ""
