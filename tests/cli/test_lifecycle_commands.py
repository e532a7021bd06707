"""`metalgate keys ...` and `metalgate gateway reissue-token|revoke` against the live API."""

from __future__ import annotations

from cli.exit_codes import ExitCode
from tests.cli.conftest import Cli


def test_keys_create_list_revoke(admin_cli: Cli) -> None:
    project = admin_cli.json("project", "create", "keys-demo")
    made = admin_cli.json(
        "keys", "create", project["id"], "--name", "ci", "--role", "editor",
        "--expires-in-days", "7",
    )  # fmt: skip
    assert made["key"] and made["expires_at"]
    listed = admin_cli.json("keys", "list", project["id"])
    assert [k["name"] for k in listed] == ["ci"]
    assert made["key"] not in admin_cli.run("keys", "list", project["id"]).stdout
    ci = admin_cli.as_key(made["key"])
    assert ci.json("gateway", "list") is not None
    admin_cli.run("keys", "revoke", project["id"], made["id"])
    ci.error("gateway", "list", code=ExitCode.AUTH)
    assert admin_cli.json("keys", "list", project["id"]) == []


def test_gateway_reissue_token_and_revoke(project_cli: Cli) -> None:
    gateway = project_cli.json("gateway", "create", "--name", "edge-r")["gateway"]
    again = project_cli.json("gateway", "reissue-token", gateway["id"])
    assert again["registration_token"] in again["register_command"]
    revoked = project_cli.json("gateway", "revoke", gateway["id"])
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    project_cli.error("gateway", "reissue-token", gateway["id"], code=ExitCode.USAGE)


def test_audit_lists_what_the_project_did(project_cli: Cli) -> None:
    gateway = project_cli.json("gateway", "create", "--name", "edge-audit")["gateway"]
    entries = project_cli.json("audit", "--action", "POST /v1/gateways", "--limit", "10")
    assert entries and entries[0]["outcome"] == "ok"
    assert any(e["action"] == "POST /v1/gateways" for e in entries)
    table = project_cli.run("audit", "--limit", "5").stdout
    assert "POST /v1/gateways" in table
    assert gateway["id"]
