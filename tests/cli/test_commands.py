"""The user CLI against a live API: outputs, errors and the documented exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from cli.exit_codes import ExitCode
from tests.cli.conftest import Cli, Env, LiveApi
from tests.support.ports import free_port

EXAMPLE_SPEC = Path(__file__).parents[2] / "examples" / "cluster.yaml"
MAAS_KEY = "aaaa:bbbb:cccc"


def test_login_saves_credentials_private_and_later_commands_use_them(
    admin_cli: Cli, live_api: LiveApi
) -> None:
    no_env: Env = {"METALGATE_API_URL": None, "METALGATE_API_KEY": None}
    admin_cli.run("login", "--api-url", live_api.url, "--api-key", live_api.admin_key, env=no_env)

    path = admin_cli.config_dir / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"api_url": live_api.url, "api_key": live_api.admin_key}
    assert isinstance(admin_cli.json("gateway", "list", env=no_env), list)
    # The environment overrides the file, so a wrong key there is an auth error.
    admin_cli.error("gateway", "list", code=ExitCode.AUTH, env={"METALGATE_API_KEY": "mgk_wrong"})


def test_login_with_a_wrong_key_saves_nothing(admin_cli: Cli, live_api: LiveApi) -> None:
    result = admin_cli.run(
        "login", "--api-url", live_api.url, "--api-key", "mgk_wrong", code=ExitCode.AUTH
    )
    assert "invalid API key" in result.stderr
    assert not (admin_cli.config_dir / "credentials").exists()


def test_no_key_configured_is_an_auth_error(admin_cli: Cli) -> None:
    error = admin_cli.as_key(None).error("cluster", "list", code=ExitCode.AUTH)
    assert "metalgate login" in error["detail"]


def test_unreachable_api(admin_cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = admin_cli.error(
        "cluster", "list", code=ExitCode.UNREACHABLE, env={"METALGATE_API_URL": url}
    )
    assert url in error["detail"]


def test_project_key_roles_are_enforced(admin_cli: Cli, project_cli: Cli) -> None:
    other_gateway = project_cli.json("gateway", "create", "--name", "gw-roles")["gateway"]["id"]
    created = admin_cli.json("project", "create", "roles-demo")
    viewer = admin_cli.json("project", "key-create", created["id"], "--name", "reader")
    assert viewer["role"] == "viewer" and viewer["key"]
    viewer_cli = admin_cli.as_key(viewer["key"])
    # A fresh project sees only the control plane's own (system) gateway.
    assert [g["name"] for g in viewer_cli.json("gateway", "list") if not g["system"]] == []
    viewer_cli.error("gateway", "create", "--name", "nope", code=ExitCode.AUTH)
    # Another project's objects do not exist for this key.
    viewer_cli.error("gateway", "get", other_gateway, code=ExitCode.NOT_FOUND)


def test_gateway_create_list_get_delete(project_cli: Cli) -> None:
    table = project_cli.run("gateway", "create", "--name", "edge-1").stdout
    assert "metalgate gateway register" in table and "edge-1" in table

    created = project_cli.json("gateway", "create", "--name", "edge-2")
    gateway = created["gateway"]
    assert created["registration_token"] in created["register_command"]
    assert gateway["status"] == "pending"

    listed = project_cli.json("gateway", "list")
    assert {g["name"] for g in listed} >= {"edge-1", "edge-2"}
    assert "edge-2" in project_cli.run("gateway", "list").stdout
    assert project_cli.json("gateway", "get", gateway["id"])["id"] == gateway["id"]
    # A name is as good as an id.
    assert project_cli.json("gateway", "get", "edge-2")["id"] == gateway["id"]
    reissued = project_cli.json("gateway", "reissue-token", "edge-2")
    assert reissued["gateway"]["id"] == gateway["id"]

    project_cli.run("gateway", "delete", "edge-2")
    project_cli.error("gateway", "get", gateway["id"], code=ExitCode.NOT_FOUND)
    project_cli.error("gateway", "create", "--name", "Not_A_Name", code=ExitCode.USAGE)


def test_account_create_checks_its_flags_before_calling(project_cli: Cli) -> None:
    base = ("account", "create", "--name", "maas", "--maas-url", "http://maas:5240/MAAS/")
    error = project_cli.error(*base, "--gateway", "gw", code=ExitCode.USAGE)
    assert "--maas-api-key" in error["detail"]
    error = project_cli.error(*base, "--maas-api-key", MAAS_KEY, code=ExitCode.USAGE)
    assert "--system-gateway" in error["detail"]


def test_account_create_reports_the_api_refusal(project_cli: Cli, tmp_path: Path) -> None:
    key_file = tmp_path / "maas.key"
    key_file.write_text("not-a-maas-key\n")
    base = ("account", "create", "--name", "maas", "--maas-url", "http://maas:5240/MAAS/")
    error = project_cli.error(
        *base, "--maas-api-key-file", str(key_file), "--gateway", "gw", code=ExitCode.USAGE
    )
    assert "maas_api_key" in error["detail"]
    assert project_cli.json("account", "list") == []


def test_account_through_an_offline_gateway_fails_and_says_how_to_fix(project_cli: Cli) -> None:
    gateway = project_cli.json("gateway", "create", "--name", "never-started")["gateway"]
    error = project_cli.error(
        "account",
        "create",
        "--name",
        "maas",
        "--maas-url",
        "http://maas:5240/MAAS/",
        "--maas-api-key",
        MAAS_KEY,
        "--gateway",
        gateway["id"],
        code=ExitCode.FAILED,
    )
    assert error["status"] == 503
    assert "offline" in error["detail"] and "metalgate gateway run" in error["detail"]


def test_account_move_needs_the_key_and_one_gateway(project_cli: Cli) -> None:
    base = ("account", "move", "acc-nope")
    error = project_cli.error(*base, "--gateway", "gw", code=ExitCode.USAGE)
    assert "--maas-api-key" in error["detail"]
    error = project_cli.error(*base, "--maas-api-key", MAAS_KEY, code=ExitCode.USAGE)
    assert "--system-gateway" in error["detail"]
    gateway = project_cli.json("gateway", "create", "--name", "move-target")["gateway"]
    error = project_cli.error(
        *base, "--maas-api-key", MAAS_KEY, "--gateway", gateway["id"], code=ExitCode.NOT_FOUND
    )
    assert "acc-nope" in error["detail"]


def test_cluster_reads_and_not_found(project_cli: Cli) -> None:
    assert project_cli.json("cluster", "list") == []
    assert project_cli.json("cluster", "list", "--phase", "Running") == []
    for command in ("get", "events", "kubeconfig", "delete"):
        project_cli.error("cluster", command, "cl-missing", code=ExitCode.NOT_FOUND)
    project_cli.error(
        "cluster", "upgrade", "cl-missing", "--version", "v1.31.0", code=ExitCode.NOT_FOUND
    )
    for action in ("cordon", "drain", "uncordon"):
        project_cli.error("cluster", action, "cl-missing", "node-1", code=ExitCode.NOT_FOUND)
    project_cli.error("cluster", "repave", "cl-missing", "--pool", "w", code=ExitCode.NOT_FOUND)
    both = project_cli.error(
        "cluster", "repave", "cl-missing", "--node", "n", "--pool", "w", code=ExitCode.USAGE
    )
    assert "either --node" in both["detail"]


def test_cluster_create_validates_the_spec_locally(project_cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: Bad_Name\ncontrol_plane: {name: cp, count: 2}\nunknown: 1\n")
    error = project_cli.error("cluster", "create", "-f", str(spec), code=ExitCode.USAGE)
    fields = {e["field"] for e in error["errors"]}
    assert fields == {"name", "control_plane", "unknown"}
    result = project_cli.run("cluster", "create", "-f", str(spec), code=ExitCode.USAGE)
    assert "[a-z0-9]" in result.stderr  # the pattern survives rich markup


def test_cluster_create_needs_an_account(project_cli: Cli) -> None:
    error = project_cli.error("cluster", "create", "-f", str(EXAMPLE_SPEC), code=ExitCode.USAGE)
    assert "--account" in error["detail"] and "none yet" in error["detail"]
    project_cli.error(
        "cluster",
        "create",
        "-f",
        str(EXAMPLE_SPEC),
        "--account",
        "acc-missing",
        code=ExitCode.NOT_FOUND,
    )


def test_real_entry_point_exit_code_and_json_error(live_api: LiveApi, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "METALGATE_CONFIG_DIR": str(tmp_path),
        "METALGATE_API_URL": live_api.url,
        "METALGATE_API_KEY": live_api.admin_key,
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli", "cluster", "get", "cl-missing", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ExitCode.NOT_FOUND, done.stderr
    assert done.stdout == ""
    assert json.loads(done.stderr)["error"]["status"] == 404
