"""Every node's user data: valid for the real cloud-init, secrets only in 0600 files."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.cloudinit import bootstrap_from_user_data
from bootstrap import kubeadm_config as kc
from bootstrap import node_script, token_window
from bootstrap.cloud_config import NodeRole, render_cloud_config
from bootstrap.material import ClusterBootstrap
from domain.cluster import EndpointMode
from domain.node_labels import Taint
from tests.bootstrap.conftest import ENDPOINT_HOST, PROXY, make_node
from tests.bootstrap.test_pki import openssl_hash
from tests.support.tools import require_tool

MATRIX = list(
    itertools.product(NodeRole, EndpointMode, [False, True], ["ubuntu/jammy", "custom/k8s-1-30"])
)


def files(user_data: str) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in yaml.safe_load(user_data)["write_files"]}


@pytest.mark.parametrize(
    ("role", "mode", "proxied", "image"),
    MATRIX,
    ids=[
        f"{r.value}-{m.value}-{'proxy' if p else 'direct'}-{i.split('/')[0]}"
        for r, m, p, i in MATRIX
    ],
)
def test_user_data_passes_cloud_init_schema(
    cluster_bootstrap: ClusterBootstrap,
    tmp_path: Path,
    role: NodeRole,
    mode: EndpointMode,
    proxied: bool,
    image: str,
) -> None:
    cloud_init = require_tool("cloud-init")
    node = make_node(
        cluster_bootstrap, role=role, mode=mode, proxy=PROXY if proxied else None, image=image
    )
    user_data = render_cloud_config(node)
    path = tmp_path / "user-data"
    path.write_text(user_data)
    checked = subprocess.run(
        [cloud_init, "schema", "-c", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid cloud-config" in checked.stdout

    assert user_data.startswith("#cloud-config\n") and "Content-Type: multipart" not in user_data
    written = files(user_data)
    env = written[node_script.NODE_ENV]["content"]
    assert f"IMAGE_KIND={image.split('/')[0]}" in env and f"NODE_ROLE={role.value}" in env
    assert (node_script.KUBE_VIP_TEMPLATE in written) == (
        role != NodeRole.WORKER and mode == EndpointMode.VIP
    )
    assert ("/etc/kubernetes/pki/ca.key" in written) == (role == NodeRole.FIRST_CONTROL_PLANE)
    assert (node_script.UPLOAD_CERTS_CONFIG in written) == (role != NodeRole.WORKER)
    assert (node_script.PROXY_ENV in written) == proxied
    # The emulator's boot hook and the agent still find their bootstrap.
    assert bootstrap_from_user_data(user_data).hostname == node.agent.hostname


@pytest.mark.parametrize("role", list(NodeRole), ids=[r.value for r in NodeRole])
def test_a_pool_with_labels_taints_and_a_zone_passes_cloud_init_schema(
    cluster_bootstrap: ClusterBootstrap, tmp_path: Path, role: NodeRole
) -> None:
    cloud_init = require_tool("cloud-init")
    node = make_node(
        cluster_bootstrap,
        role=role,
        zone="az3",
        labels={"example.com/gpu": "a100", "tier": ""},
        taints=[Taint(key="example.com/gpu", value="true", effect="NoExecute")],
    )
    user_data = render_cloud_config(node)
    path = tmp_path / "user-data"
    path.write_text(user_data)
    checked = subprocess.run(
        [cloud_init, "schema", "-c", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (first, *_) = kc.parse_documents(files(user_data)[node_script.KUBEADM_CONFIG]["content"])
    assert isinstance(first, kc.InitConfiguration | kc.JoinConfiguration)
    assert first.node_registration is not None
    assert first.node_registration.kubelet_extra_args == {
        "node-labels": "example.com/gpu=a100,tier=,topology.kubernetes.io/zone=az3"
    }
    assert [t.key for t in first.node_registration.taints or []][-1] == "example.com/gpu"


def test_secrets_are_in_0600_files_and_never_on_a_command_line(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    material = cluster_bootstrap.material
    secrets = [
        cluster_bootstrap.token.value,
        material.certificate_key,
        "mga_agent-secret",
        *(p.key_pem.splitlines()[1] for p in (material.pki.ca, material.pki.etcd_ca,
                                               material.pki.front_proxy_ca, material.pki.service_account)),
    ]  # fmt: skip
    for role in NodeRole:
        user_data = render_cloud_config(make_node(cluster_bootstrap, role=role, proxy=PROXY))
        config = yaml.safe_load(user_data)
        assert config["runcmd"] == [[node_script.SCRIPT_PATH]]
        assert set(config) == {"hostname", "write_files", "runcmd"}
        for entry in config["write_files"]:
            holds = [s for s in secrets if s in entry["content"]]
            if holds:
                assert entry["permissions"] == "0600", f"{entry['path']} holds a secret"
        script = files(user_data)[node_script.SCRIPT_PATH]["content"]
        assert not [s for s in secrets if s in script]


def test_first_control_plane_writes_the_pki_kubeadm_reads(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    written = files(render_cloud_config(make_node(cluster_bootstrap)))
    pki = cluster_bootstrap.material.pki
    expected = {
        "ca.crt": (pki.ca.cert_pem, "0644"),
        "ca.key": (pki.ca.key_pem, "0600"),
        "etcd/ca.crt": (pki.etcd_ca.cert_pem, "0644"),
        "etcd/ca.key": (pki.etcd_ca.key_pem, "0600"),
        "front-proxy-ca.crt": (pki.front_proxy_ca.cert_pem, "0644"),
        "front-proxy-ca.key": (pki.front_proxy_ca.key_pem, "0600"),
        "sa.key": (pki.service_account.key_pem, "0600"),
        "sa.pub": (pki.service_account.cert_pem, "0644"),
    }
    for name, (content, mode) in expected.items():
        entry = written[f"/etc/kubernetes/pki/{name}"]
        assert (entry["content"], entry["permissions"]) == (content, mode), name
    documents = kc.parse_documents(written[node_script.KUBEADM_CONFIG]["content"])
    cluster = next(d for d in documents if isinstance(d, kc.ClusterConfiguration))
    assert ENDPOINT_HOST[EndpointMode.VIP] in cluster.api_server.cert_sans


def test_joining_nodes_pin_the_hash_openssl_computes_from_the_first_nodes_ca(
    cluster_bootstrap: ClusterBootstrap, tmp_path: Path
) -> None:
    require_tool("openssl")
    first = files(render_cloud_config(make_node(cluster_bootstrap)))
    ca = tmp_path / "ca.crt"
    ca.write_text(first["/etc/kubernetes/pki/ca.crt"]["content"])
    expected = openssl_hash(ca)
    for role in (NodeRole.CONTROL_PLANE, NodeRole.WORKER):
        joining = files(render_cloud_config(make_node(cluster_bootstrap, role=role)))
        (join,) = kc.parse_documents(joining[node_script.KUBEADM_CONFIG]["content"])
        assert isinstance(join, kc.JoinConfiguration)
        assert join.discovery.bootstrap_token.ca_cert_hashes == [expected]


def test_proxy_reaches_apt_containerd_kubelet_and_the_agent(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    written = files(
        render_cloud_config(make_node(cluster_bootstrap, role=NodeRole.WORKER, proxy=PROXY))
    )
    apt = written["/etc/apt/apt.conf.d/90metalgate-proxy"]["content"]
    assert 'Acquire::http::Proxy "http://proxy.corp:3128";' in apt
    for unit in ("containerd", "kubelet"):
        drop_in = written[f"/etc/systemd/system/{unit}.service.d/10-metalgate-proxy.conf"][
            "content"
        ]
        assert drop_in.startswith("[Service]\nEnvironment=")
        assert '"HTTPS_PROXY=http://proxy.corp:3128"' in drop_in
        no_proxy = drop_in.split('"NO_PROXY=')[1].split('"')[0].split(",")
        for needed in ("10.0.0.0/8", ".corp", "10.244.0.0/16", "10.96.0.0/12",
                       ENDPOINT_HOST[EndpointMode.VIP], "10.20.0.11", "127.0.0.1", "localhost"):  # fmt: skip
            assert needed in no_proxy
    unit = written["/etc/systemd/system/metalgate-agent.service"]["content"]
    assert f"EnvironmentFile=-{node_script.PROXY_ENV}" in unit
    assert (
        "ExecStart=/opt/metalgate/venv/bin/metalgate agent run --bootstrap /etc/metalgate/bootstrap.json"
        in unit
    )


def test_kube_vip_announces_the_endpoint_on_the_boot_time_interface(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    for role, kubeconfig in (
        (NodeRole.FIRST_CONTROL_PLANE, "/etc/kubernetes/super-admin.conf"),
        (NodeRole.CONTROL_PLANE, "/etc/kubernetes/admin.conf"),
    ):
        written = files(render_cloud_config(make_node(cluster_bootstrap, role=role)))
        pod = yaml.safe_load(written[node_script.KUBE_VIP_TEMPLATE]["content"])
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        assert env["address"] == ENDPOINT_HOST[EndpointMode.VIP]
        assert env["vip_arp"] == "true" and env["port"] == "6443"
        assert env["vip_interface"] == "__METALGATE_VIP_INTERFACE__"
        assert pod["spec"]["volumes"][0]["hostPath"]["path"] == kubeconfig
    before = make_node(cluster_bootstrap, version="v1.28.9")
    pod = yaml.safe_load(
        files(render_cloud_config(before))[node_script.KUBE_VIP_TEMPLATE]["content"]
    )
    assert pod["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"


def test_node_script_is_valid_bash() -> None:
    bash = require_tool("bash")
    checked = subprocess.run(
        [bash, "-n"], input=node_script.node_script(), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


@pytest.fixture
def sandboxed_script(tmp_path: Path) -> Path:
    """The real script with its fixed paths moved into tmp_path, and stand-in binaries on PATH."""
    text = node_script.SCRIPT
    for placeholder, name in (("__NODE_ENV__", "node.env"), ("__PROXY_ENV__", "proxy.env"),
                              ("__STATUS__", "status"), ("__ERROR__", "error"),
                              ("__UPLOAD_CONFIG__", "upload-certs.yaml"),
                              ("__TOKEN_SEED__", "token-seed"), ("__KUBEADM__", "kubeadm.yaml"),
                              ("__KUBE_VIP__", "kube-vip.yaml"), ("__VENV__", "venv"),
                              ("__SCRIPT__", "bootstrap-node")):  # fmt: skip
        text = text.replace(placeholder, str(tmp_path / name))
    text = text.replace("__TOKEN_PROGRAM__", token_window.__file__)
    script = tmp_path / "bootstrap-node"
    script.write_text(text)
    script.chmod(0o755)
    (tmp_path / "bin").mkdir()
    return script


def fake(tmp_path: Path, name: str, output: str) -> None:
    path = tmp_path / "bin" / name
    path.write_text(f"#!/bin/sh\necho '{output}'\necho {name} >> {tmp_path / 'calls'}\n")
    path.chmod(0o755)


def run_packages_step(
    material: ClusterBootstrap, tmp_path: Path, script: Path, image: str
) -> subprocess.CompletedProcess[str]:
    user_data = render_cloud_config(make_node(material, image=image))
    (tmp_path / "node.env").write_text(files(user_data)[node_script.NODE_ENV]["content"])
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(script), "step", "kubernetes_packages"], env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("kubelet", "message"),
    [
        ("Kubernetes v1.30.4", None),
        ("Kubernetes v1.29.8", "has kubelet v1.29.8, the cluster runs v1.30.4"),
    ],
)
def test_custom_image_installs_nothing_and_refuses_other_versions(
    cluster_bootstrap: ClusterBootstrap,
    sandboxed_script: Path,
    tmp_path: Path,
    kubelet: str,
    message: str | None,
) -> None:
    require_tool("bash")
    fake(tmp_path, "containerd", "containerd 1.7")
    fake(tmp_path, "kubeadm", "v1.30.4")
    fake(tmp_path, "kubelet", kubelet)
    fake(tmp_path, "kubectl", "clientVersion:\n  gitVersion: v1.30.4")
    fake(tmp_path, "apt-get", "must not run")
    result = run_packages_step(cluster_bootstrap, tmp_path, sandboxed_script, "custom/k8s-1-30")
    calls = (tmp_path / "calls").read_text().split()
    assert "apt-get" not in calls
    if message is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert message in result.stderr and "custom/k8s-1-30" in result.stderr


def test_a_failed_step_is_recorded_and_the_agent_still_starts(
    cluster_bootstrap: ClusterBootstrap, sandboxed_script: Path, tmp_path: Path
) -> None:
    """The node stops at the first failed step, yet its agent comes up to report it."""
    require_tool("bash")
    user_data = render_cloud_config(make_node(cluster_bootstrap, role=NodeRole.WORKER))
    (tmp_path / "node.env").write_text(files(user_data)[node_script.NODE_ENV]["content"])
    failing = tmp_path / "bin" / "swapoff"  # the very first command: nothing else is touched
    failing.write_text("#!/bin/sh\necho 'swapoff: not permitted' >&2\nexit 1\n")
    failing.chmod(0o755)
    fake(tmp_path, "systemctl", "")
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name in ("python", "pip"):
        (venv_bin / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path / "calls"}\n')
        (venv_bin / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run([str(sandboxed_script)], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert (tmp_path / "status").read_text().startswith("failed: prepare_node")
    calls = (tmp_path / "calls").read_text()
    assert "pip install --quiet https://api.example:8443/v1/agent/package/metalgate_agent-" in calls
    assert "step kubeadm_bootstrap" not in result.stdout


def test_upkeep_reuploads_certificates_and_keeps_the_rendered_token(
    cluster_bootstrap: ClusterBootstrap, sandboxed_script: Path, tmp_path: Path
) -> None:
    """A control-plane node's timer: what lets a node join days after the create."""
    require_tool("bash")
    written = files(render_cloud_config(make_node(cluster_bootstrap, role=NodeRole.CONTROL_PLANE)))
    service = written["/etc/systemd/system/metalgate-control-plane-upkeep.service"]["content"]
    assert f"ExecStart={node_script.SCRIPT_PATH} upkeep" in service
    assert written[node_script.TOKEN_SEED]["permissions"] == "0600"
    assert written[node_script.TOKEN_PROGRAM]["content"] == Path(token_window.__file__).read_text()
    for path, name in ((node_script.NODE_ENV, "node.env"),
                       (node_script.UPLOAD_CERTS_CONFIG, "upload-certs.yaml"),
                       (node_script.TOKEN_SEED, "token-seed")):  # fmt: skip
        (tmp_path / name).write_text(written[path]["content"])
    # Stand-ins: kubeadm reports an upgraded version; kubectl keeps what it is asked to apply.
    kubeadm = tmp_path / "bin" / "kubeadm"
    kubeadm.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo v1.32.1; exit 0; fi\n'
        f'echo "$*" >> {tmp_path / "calls"}\n'
        f'cp "$6" {tmp_path / "seen.yaml"}\n'
    )
    kubectl = tmp_path / "bin" / "kubectl"
    kubectl.write_text(
        f'#!/bin/sh\necho "$*" > {tmp_path / "kubectl-args"}\ncat > {tmp_path / "applied"}\n'
    )
    for tool in (kubeadm, kubectl):
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(sandboxed_script), "upkeep"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr

    # Certificates: re-uploaded with the installed kubeadm's version, the temporary copy gone.
    call = (tmp_path / "calls").read_text()
    assert call.startswith("init phase upload-certs --upload-certs --config ")
    init, cluster = kc.parse_documents((tmp_path / "seen.yaml").read_text())
    assert isinstance(cluster, kc.ClusterConfiguration) and cluster.kubernetes_version == "v1.32.1"
    assert isinstance(init, kc.InitConfiguration)
    assert init.certificate_key == cluster_bootstrap.material.certificate_key
    assert not Path(call.split()[-1]).exists()
    # Tokens: the one this render handed out is among those kept in the cluster.
    assert (tmp_path / "kubectl-args").read_text().split() == [
        "--kubeconfig", "/etc/kubernetes/admin.conf", "apply", "-f", "-",
    ]  # fmt: skip
    applied = json.loads((tmp_path / "applied").read_text())["items"]
    kept = {f"{i['stringData']['token-id']}.{i['stringData']['token-secret']}" for i in applied}
    assert cluster_bootstrap.token.value in kept


@pytest.mark.parametrize(
    ("python3_minor", "venv_python", "packages"),
    [(10, "python3.11", "python3.11 python3.11-venv"), (12, "python3", "python3-venv")],
    ids=["jammy", "noble"],
)
def test_the_agent_venv_gets_a_python_of_at_least_3_11(
    cluster_bootstrap: ClusterBootstrap,
    sandboxed_script: Path,
    tmp_path: Path,
    python3_minor: int,
    venv_python: str,
    packages: str,
) -> None:
    """Jammy's python3 is 3.10, too old for the agent: its archive's python3.11 makes the venv."""
    require_tool("bash")
    user_data = render_cloud_config(make_node(cluster_bootstrap, role=NodeRole.WORKER))
    (tmp_path / "node.env").write_text(files(user_data)[node_script.NODE_ENV]["content"])
    calls = tmp_path / "calls"
    venv_bin = tmp_path / "venv" / "bin"
    for name, minor in (("python3", python3_minor), ("python3.11", 11)):
        # A stand-in answering the version check, and `-m venv DIR` making a venv with a pip.
        (tmp_path / "bin" / name).write_text(
            f'#!/bin/sh\nif [ "$1" = -c ]; then exit $(( {minor} < 11 )); fi\n'
            f'echo "{name} $*" >> {calls}\nmkdir -p {venv_bin}\n'
            f"printf '#!/bin/sh\\necho \"pip $*\" >> {calls}\\n' > {venv_bin}/pip\n"
            f"chmod +x {venv_bin}/pip\n"
        )
        (tmp_path / "bin" / name).chmod(0o755)
    (tmp_path / "bin" / "apt-get").write_text(f'#!/bin/sh\necho "apt-get $*" >> {calls}\n')
    (tmp_path / "bin" / "apt-get").chmod(0o755)
    failing = tmp_path / "bin" / "swapoff"  # stop at the first step: only install_agent runs
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    fake(tmp_path, "systemctl", "")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    subprocess.run([str(sandboxed_script)], env=env, capture_output=True, text=True)
    lines = calls.read_text().splitlines()
    assert f"apt-get install -y -q {packages}" in lines
    assert f"{venv_python} -m venv {tmp_path / 'venv'}" in lines
    assert any(line.startswith("pip install --quiet https://") for line in lines)
