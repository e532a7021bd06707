"""One cluster's bootstrap material: generated once, stored encrypted, shared by all its nodes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bootstrap.pki import ClusterPki, new_cluster_pki
from bootstrap.tokens import BootstrapToken, new_certificate_key, new_token_seed


class ClusterMaterial(BaseModel):
    """What never changes for a cluster: its CAs, service-account key and certificate key."""

    model_config = ConfigDict(frozen=True)

    pki: ClusterPki
    certificate_key: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    token_seed: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False, description="see token_window")


class ClusterBootstrap(BaseModel):
    """The material plus the bootstrap token currently in use (rotated when it nears expiry)."""

    model_config = ConfigDict(frozen=True)

    material: ClusterMaterial
    token: BootstrapToken


def new_cluster_material() -> ClusterMaterial:
    """CPU-bound (four RSA keys): run it off the event loop."""
    return ClusterMaterial(
        pki=new_cluster_pki(), certificate_key=new_certificate_key(), token_seed=new_token_seed()
    )
