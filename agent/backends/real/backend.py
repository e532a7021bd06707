"""`RealBackend`: the `NodeBackend` of a node where cloud-init ran kubeadm.

The agent of the first control-plane node drives an upgrade the way kubeadm's documentation
does, one node at a time: `kubeadm upgrade apply` there, `kubeadm upgrade node` on the
others, then drain, kubelet and kubectl packages, kubelet restart, uncordon. A step that must
run on another machine (its packages, its `kubeadm upgrade node`) is asked of that node's own
agent through an annotation on its Node object, and that agent answers in another one: the API
server is the only channel all nodes already share, and the control plane stays out of it.
A control-plane node that leaves (repave) or died (remediation) has its etcd member removed
through the etcd of the node running the command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from agent.backends.real.kube import KubeApi, NodeRecord
from agent.backends.real.runner import CommandFailed, CommandRunner, SubprocessRunner
from agent.node_backend import NodeState, PhaseCallback
from agent.versions import package_version

log = logging.getLogger(__name__)

ADMIN_KUBECONFIG = Path("/etc/kubernetes/admin.conf")
KUBELET_KUBECONFIG = Path("/etc/kubernetes/kubelet.conf")
# "<step>:<version>" asked of a node's agent, answered in DONE (or ERROR) with the same value.
REQUEST_ANNOTATION = "upgrade.metalgate.io/request"
DONE_ANNOTATION = "upgrade.metalgate.io/done"
ERROR_ANNOTATION = "upgrade.metalgate.io/error"
KUBEADM_STEP = "kubeadm"
KUBELET_STEP = "kubelet"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# etcd runs as kubeadm's static pod: etcdctl is run inside its container (the node has no
# etcdctl of its own), with the certificates kubeadm mounts there. Paths, not secrets.
CONTAINERD = "unix:///run/containerd/containerd.sock"
ETCDCTL = [
    "etcdctl",
    "--endpoints=https://127.0.0.1:2379",
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/server.crt",
    "--key=/etc/kubernetes/pki/etcd/server.key",
]


class RealTimings(BaseModel):
    """How long the real steps may take, in seconds."""

    poll_interval: float = Field(default=5.0, gt=0, description="re-read of this node")
    drain_timeout: float = Field(default=600.0, gt=0)
    eviction_retry: float = Field(default=5.0, gt=0, description="after a PDB's 429")
    step_timeout: float = Field(default=1200.0, gt=0, description="one kubeadm/apt step")
    kubelet_timeout: float = Field(default=300.0, gt=0, description="node back at version")


class RealBackend:
    def __init__(
        self,
        hostname: str,
        kubeconfig: Path,
        *,
        runner: CommandRunner | None = None,
        timings: RealTimings | None = None,
    ) -> None:
        """`kubeconfig`: admin.conf on control-plane nodes, kubelet.conf on workers."""
        self.hostname = hostname
        self.kubeconfig = kubeconfig
        self.runner = runner or SubprocessRunner()
        self.timings = timings or RealTimings()
        self._kube: KubeApi | None = None

    async def _api(self) -> KubeApi:
        if self._kube is None:
            self._kube = await KubeApi.from_kubeconfig(self.kubeconfig)
        return self._kube

    async def bring_up(self, on_phase: PhaseCallback) -> None:
        """Wait for cloud-init's kubeadm: the kubeconfig exists and this Node is registered."""
        while True:
            reason = await self._not_up_because()
            if reason is None:
                return
            outcome = on_phase(f"waiting for kubeadm: {reason}")
            if outcome is not None:
                await outcome
            await asyncio.sleep(self.timings.poll_interval)

    async def _not_up_because(self) -> str | None:
        if not await asyncio.to_thread(self.kubeconfig.exists):
            return f"{self.kubeconfig} does not exist yet"
        try:
            record = await (await self._api()).node(self.hostname)
        except Exception as error:
            await self._forget_api()
            return f"API server not answering ({type(error).__name__})"
        return None if record is not None else f"node {self.hostname} not registered yet"

    async def _forget_api(self) -> None:
        if self._kube is not None:
            await self._kube.close()
            self._kube = None

    async def admin_kubeconfig(self) -> str:
        return await asyncio.to_thread(self.kubeconfig.read_text)

    async def watch_self(self, on_change: Callable[[NodeState], None]) -> None:
        """Re-read this Node every poll interval; run the upgrade steps asked of it."""
        last: NodeState | None = None
        while True:
            try:
                record = await (await self._api()).node(self.hostname)
            except Exception as error:
                log.warning("reading node %s failed: %s", self.hostname, error)
                record = None
            if record is not None:
                if record.state != last:
                    last = record.state
                    on_change(record.state)
                await self._answer_request(record)
            await asyncio.sleep(self.timings.poll_interval)

    async def nodes(self) -> list[NodeState]:
        states = [r.state for r in await (await self._api()).nodes()]
        return sorted(states, key=lambda n: (n.name != self.hostname, not n.control_plane, n.name))

    async def find_node(self, name: str) -> NodeState | None:
        record = await (await self._api()).node(name)
        return record.state if record is not None else None

    async def upgrade_kubeadm(self, node: str, version: str, *, first: bool) -> None:
        if node == self.hostname:
            await self._local_kubeadm(version, first=first)
        else:
            await self._ask(node, f"{KUBEADM_STEP}:{version}")

    async def cordon(self, node: str) -> None:
        await (await self._api()).set_unschedulable(node, True)

    async def drain(self, node: str) -> None:
        api = await self._api()
        await api.set_unschedulable(node, True)
        await api.drain(
            node, within=self.timings.drain_timeout, retry_interval=self.timings.eviction_retry
        )

    async def upgrade_kubelet(self, node: str, version: str) -> None:
        if node == self.hostname:
            await self._local_kubelet(version)
        else:
            await self._ask(node, f"{KUBELET_STEP}:{version}")
        await self._wait_for_kubelet(node, version)

    async def uncordon(self, node: str) -> None:
        await (await self._api()).set_unschedulable(node, False)

    async def repave(self, node: str) -> None:
        """Drain; a control-plane node's etcd member goes (so the members left keep their
        quorum); then delete the Node, so the machine can be released, or redeployed and join
        again under its name."""
        await self.drain(node)
        api = await self._api()
        record = await api.node(node)
        if record is not None and record.state.control_plane:
            await self.remove_etcd_member(node)
        await api.delete_node(node)

    async def remove_etcd_member(self, node: str) -> None:
        """`etcdctl member remove` of `node`'s member through this node's etcd, the way
        kubeadm's documentation removes a dead control plane (no `kubeadm reset` there)."""
        crictl = ["crictl", "--runtime-endpoint", CONTAINERD]
        found = await self._run_output(
            [*crictl, "ps", "--name", "etcd", "--state", "Running", "-q"]
        )
        container = found.split()[0] if found.split() else ""
        if not container:
            raise CommandFailed(f"no running etcd container on {self.hostname}")
        etcdctl = [*crictl, "exec", container, *ETCDCTL]
        listing = json.loads(await self._run_output([*etcdctl, "member", "list", "-w", "json"]))
        ids = [m["ID"] for m in listing.get("members", []) if m.get("name") == node]
        for member in ids:
            await self._run_output([*etcdctl, "member", "remove", f"{member:x}"])
            log.info("removed etcd member %x of %s", member, node)

    async def delete_node(self, node: str) -> None:
        await (await self._api()).delete_node(node)

    async def close(self) -> None:
        await self._forget_api()

    # --- steps on this machine ----------------------------------------------------------

    async def _local_kubeadm(self, version: str, *, first: bool) -> None:
        await self._apt_install(["kubeadm"], version)
        if first:
            await self._run(["kubeadm", "upgrade", "apply", version, "-y"])
        else:
            await self._run(["kubeadm", "upgrade", "node"])

    async def _local_kubelet(self, version: str) -> None:
        await self._apt_install(["kubelet", "kubectl"], version)
        await self._run(["systemctl", "daemon-reload"])
        await self._run(["systemctl", "restart", "kubelet"])

    async def _apt_install(self, packages: list[str], version: str) -> None:
        # kubeadm's documentation holds these packages; installing a pinned version past the
        # hold is what --allow-change-held-packages is for.
        pinned = [f"{name}={package_version(version)}" for name in packages]
        await self._run(["apt-get", "update"])
        await self._run(["apt-get", "install", "-y", "--allow-change-held-packages", *pinned])

    async def _run(self, argv: list[str]) -> None:
        await self.runner.run(argv, time_limit=self.timings.step_timeout, env=APT_ENV)

    async def _run_output(self, argv: list[str]) -> str:
        return await self.runner.run(argv, time_limit=self.timings.step_timeout)

    # --- steps asked of another node's agent --------------------------------------------

    async def _ask(self, node: str, request: str) -> None:
        api = await self._api()
        await api.annotate(node, {REQUEST_ANNOTATION: request, ERROR_ANNOTATION: None})
        deadline = time.monotonic() + self.timings.step_timeout
        while time.monotonic() < deadline:
            record = await api.node(node)
            if record is None:
                raise CommandFailed(f"node {node} left the cluster during {request}")
            if record.annotations.get(DONE_ANNOTATION) == request:
                return
            if error := record.annotations.get(ERROR_ANNOTATION):
                raise CommandFailed(f"{request} failed on {node}: {error}")
            await asyncio.sleep(self.timings.poll_interval)
        raise CommandFailed(
            f"the agent on {node} did not finish {request} within "
            f"{self.timings.step_timeout:.0f}s: is it running (journalctl -u metalgate-agent)?"
        )

    async def _answer_request(self, record: NodeRecord) -> None:
        request = record.annotations.get(REQUEST_ANNOTATION, "")
        if not request or request == record.annotations.get(DONE_ANNOTATION):
            return
        if record.annotations.get(ERROR_ANNOTATION):
            return  # reported; the first control plane asks again to retry
        step, _, version = request.partition(":")
        api = await self._api()
        try:
            if step == KUBEADM_STEP:
                await self._local_kubeadm(version, first=False)
            elif step == KUBELET_STEP:
                await self._local_kubelet(version)
            else:
                raise CommandFailed(f"unknown upgrade step {step!r}")
        except (CommandFailed, ValueError) as error:
            log.warning("upgrade step %s failed: %s", request, error)
            await api.annotate(self.hostname, {ERROR_ANNOTATION: str(error)[-1000:]})
            return
        await api.annotate(self.hostname, {DONE_ANNOTATION: request})

    async def _wait_for_kubelet(self, node: str, version: str) -> None:
        api = await self._api()
        deadline = time.monotonic() + self.timings.kubelet_timeout
        while time.monotonic() < deadline:
            record = await api.node(node)
            if record is not None and record.state.ready:
                if record.state.kubelet_version == version:
                    return
            await asyncio.sleep(self.timings.poll_interval)
        raise CommandFailed(
            f"{node} did not come back Ready with kubelet {version} within "
            f"{self.timings.kubelet_timeout:.0f}s"
        )
