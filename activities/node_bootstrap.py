"""Render one node's kubeadm cloud-init: the control-plane side of RENDER_CLOUD_INIT.

The cluster's spec and machines come from the store (the workflow sends only what it
knows), its CA and token from the encrypted bootstrap material shared by all its nodes.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from importlib.metadata import version as package_version

from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.models import RenderCloudInitInput
from bootstrap.agent_distribution import DISTRIBUTION as AGENT_DISTRIBUTION
from bootstrap.agent_distribution import wheel_name as agent_wheel_name
from bootstrap.cloud_config import NodeRole, NodeUserData, PackageSources, render_cloud_config
from bootstrap.material import ClusterBootstrap
from domain import agent_wire
from domain.agent_wire import AgentBootstrap
from domain.cluster import ClusterSpec, EndpointMode, NodePool, version_key
from domain.maas import Machine
from domain.node_labels import ZONE_LABEL, label_value
from domain.phases import Reason
from runtime.settings import Settings
from store.bootstrap_material import BootstrapMaterialStore
from store.db import SessionFactory
from store.models import Cluster
from store.types import utcnow

log = logging.getLogger(__name__)


class NodeBootstrapRenderer:
    def __init__(
        self, sessions: SessionFactory, material: BootstrapMaterialStore, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._material = material
        self._settings = settings

    async def render(self, inp: RenderCloudInitInput) -> str:
        async with self._sessions() as session:
            cluster = await session.get(Cluster, inp.cluster_id)
            if cluster is None:
                raise ApplicationError(
                    f"cluster {inp.cluster_id} is not in the store",
                    type=Reason.CLUSTER_NOT_FOUND.value,
                    non_retryable=True,
                )
            stored_spec, stored_machines = cluster.spec, list(cluster.machines)
        try:
            spec = ClusterSpec.model_validate(stored_spec)
        except ValidationError as err:
            raise ApplicationError(
                f"cluster {inp.cluster_id}: stored spec is invalid: {_summary(err)}",
                type=Reason.INVALID_CLUSTER_SPEC.value,
                non_retryable=True,
            ) from err
        host = (
            inp.control_plane_host
            or _spec_host(spec)
            or _single_control_plane_host(inp, spec, stored_machines)
        )
        # A node must still be able to join when it boots, a whole deploy after this render.
        margin = timedelta(
            seconds=self._settings.deploy_timeout + self._settings.agent_ready_timeout
        )
        material = await self._material.get_or_create(
            inp.cluster_id,
            token_ttl=timedelta(seconds=self._settings.bootstrap_token_ttl),
            token_margin=margin,
        )
        pool = spec.pool(inp.machine.pool)
        try:
            node = self._node(inp, spec, pool, host, material)
        except ValidationError as err:
            raise ApplicationError(
                f"cluster {inp.cluster_id}: cannot render {inp.machine.hostname}'s bootstrap: "
                f"{_summary(err)}",
                type=Reason.INVALID_BOOTSTRAP_INPUT.value,
                non_retryable=True,
            ) from err
        log.info(
            "cluster %s: rendered %s bootstrap for %s (endpoint %s)",
            inp.cluster_id,
            node.role.value,
            inp.machine.hostname,
            node.endpoint,
        )
        return render_cloud_config(node)

    def _node(
        self,
        inp: RenderCloudInitInput,
        spec: ClusterSpec,
        pool: NodePool | None,
        host: str,
        material: ClusterBootstrap,
    ) -> NodeUserData:
        return NodeUserData(
            agent=AgentBootstrap(
                api_url=self._settings.api_url,
                cluster_id=inp.cluster_id,
                cluster_name=inp.cluster_name,
                agent_token=inp.agent_token,
                hostname=inp.machine.hostname,
                system_id=inp.machine.system_id,
                role=inp.role,
                first_control_plane=inp.first_control_plane,
                kubernetes_version=inp.kubernetes_version,
                proxy=inp.proxy,
            ),
            role=_role(inp),
            kubernetes_version=inp.kubernetes_version,
            image=spec.image_of(pool) if pool else f"ubuntu/{spec.distro_series}",
            endpoint_mode=spec.control_plane_endpoint.mode,
            endpoint_host=host,
            endpoint_port=spec.control_plane_endpoint.port,
            pod_subnet=str(spec.pod_subnet),
            service_subnet=str(spec.service_subnet),
            cni_manifest_url=spec.cni_manifest_url,
            node_addresses=inp.machine.ip_addresses,
            proxy=inp.proxy,
            bootstrap=material,
            packages=self._packages(inp.kubernetes_version),
            token_ttl_seconds=int(self._settings.bootstrap_token_ttl),
            rendered_at=utcnow(),
            zone=_zone_label(inp),
            labels=pool.labels if pool else {},
            taints=pool.taints if pool else [],
        )

    async def drop(self, cluster_id: str) -> None:
        await self._material.drop(cluster_id)

    def _packages(self, kubernetes_version: str) -> PackageSources:
        minor = f"v1.{version_key(kubernetes_version)[0]}"
        # Pinned to the control plane's own version, so agent and API always match.
        agent_version = package_version("metalgate")
        index = self._settings.agent_package_index
        if index:
            pip_args = ["--index-url", index, f"{AGENT_DISTRIBUTION}=={agent_version}"]
        else:
            api = self._settings.api_url.rstrip("/")
            pip_args = [f"{api}/v1/agent/package/{agent_wheel_name(agent_version)}"]
        settings = self._settings
        return PackageSources(
            kubernetes_repository=settings.kubernetes_package_repository.replace("{minor}", minor),
            kubernetes_key_url=settings.kubernetes_package_key_url.replace("{minor}", minor),
            agent_pip_args=pip_args,
            kube_vip_image=settings.kube_vip_image,
        )


def _summary(err: ValidationError) -> str:
    """Field and problem only: failure messages are not encrypted, and inputs may be secret."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_input=False)
    )


def _zone_label(inp: RenderCloudInitInput) -> str:
    """The machine's MAAS zone as a label value; MAAS allows zone names Kubernetes does not
    (a leading '_', over 63 characters): such a node joins without the zone label."""
    try:
        return label_value(inp.machine.zone)
    except ValueError:
        log.warning(
            "cluster %s: %s's MAAS zone %r is not a Kubernetes label value; it joins without %s",
            inp.cluster_id,
            inp.machine.hostname,
            inp.machine.zone,
            ZONE_LABEL,
        )
        return ""


def _role(inp: RenderCloudInitInput) -> NodeRole:
    if inp.role != agent_wire.NodeRole.CONTROL_PLANE:
        return NodeRole.WORKER
    return NodeRole.FIRST_CONTROL_PLANE if inp.first_control_plane else NodeRole.CONTROL_PLANE


def _spec_host(spec: ClusterSpec) -> str | None:
    """An external load balancer's address is the operator's, known without the gateway."""
    endpoint = spec.control_plane_endpoint
    return endpoint.address if endpoint.mode == EndpointMode.EXTERNAL else None


def _single_control_plane_host(
    inp: RenderCloudInitInput, spec: ClusterSpec, machines: list[object]
) -> str:
    """No endpoint made yet: a one-node control plane may use that node's own address."""
    if spec.control_plane.count != 1:
        raise ApplicationError(
            f"cluster {inp.cluster_id} has {spec.control_plane.count} control-plane nodes but no "
            f"{spec.control_plane_endpoint.mode.value} endpoint address; one node's IP must not "
            "be the API endpoint",
            type=Reason.CONTROL_PLANE_ENDPOINT_MISSING.value,
            non_retryable=True,
        )
    if inp.first_control_plane:
        first = inp.machine
    else:
        recorded = [Machine.model_validate(m) for m in machines]
        found = next((m for m in recorded if m.pool == spec.control_plane.name), None)
        if found is None:
            raise ApplicationError(
                f"cluster {inp.cluster_id}: no control-plane machine recorded to reach the API at",
                type=Reason.CONTROL_PLANE_ENDPOINT_MISSING.value,
                non_retryable=True,
            )
        first = found
    # MAAS often assigns the IP only at deploy; its DNS then resolves the hostname.
    return first.ip_addresses[0] if first.ip_addresses else first.hostname
